"""Reference data that every transaction points at: legal entities, currencies, FX, tax, periods."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q

from sync.models.base import CanonicalModel, lifecycle_status_field
from sync.models.fields import RateField

iso_currency_code = RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 code: three capital letters.")
iso_country_code = RegexValidator(r"^[A-Z]{2}$", "An ISO 3166-1 alpha-2 code: two capital letters.")


class ReferenceStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    INACTIVE = "inactive", "Inactive"
    RETIRED = "retired", "Retired"


# Reference rows are switched off rather than deleted (transactions point at them) and can be
# switched back on after a mistake. Retired is final: a replaced code is never reused, a new
# row is made instead, so old postings keep meaning what they meant.
REFERENCE_TRANSITIONS = {
    ReferenceStatus.ACTIVE: frozenset({ReferenceStatus.INACTIVE, ReferenceStatus.RETIRED}),
    ReferenceStatus.INACTIVE: frozenset({ReferenceStatus.ACTIVE, ReferenceStatus.RETIRED}),
    ReferenceStatus.RETIRED: frozenset(),
}


class Currency(CanonicalModel):
    """An ISO 4217 currency; `minor_units` is how many decimal places its amounts round to."""

    code = models.CharField(max_length=3, primary_key=True, validators=[iso_currency_code])
    name = models.CharField(max_length=100)
    minor_units = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(4)])
    status = lifecycle_status_field(ReferenceStatus, default=ReferenceStatus.ACTIVE)

    TRANSITIONS = REFERENCE_TRANSITIONS

    class Meta:
        verbose_name_plural = "currencies"
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(minor_units__lte=4), name="currency_minor_units_0_4"
            ),
        ]

    def __str__(self) -> str:
        return self.code


class LegalEntity(CanonicalModel):
    """A company of the group that books revenue and cost in its functional currency."""

    code = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=2, validators=[iso_country_code])
    functional_currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    status = lifecycle_status_field(ReferenceStatus, default=ReferenceStatus.ACTIVE)

    TRANSITIONS = REFERENCE_TRANSITIONS

    class Meta:
        verbose_name_plural = "legal entities"
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class FxRate(CanonicalModel):
    """1 unit of `from_currency` = `rate` units of `to_currency`, from `effective_date` on."""

    from_currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    to_currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    rate = RateField(max_digits=18, decimal_places=8)
    effective_date = models.DateField()
    status = lifecycle_status_field(ReferenceStatus, default=ReferenceStatus.ACTIVE)

    TRANSITIONS = REFERENCE_TRANSITIONS

    class Meta:
        verbose_name = "FX rate"
        ordering = ["from_currency", "to_currency", "-effective_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["from_currency", "to_currency", "effective_date"],
                name="fxrate_one_per_pair_and_date",
            ),
            models.CheckConstraint(
                condition=~Q(from_currency=F("to_currency")), name="fxrate_distinct_currencies"
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fxrate_rate_positive"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.from_currency_id}/{self.to_currency_id} {self.rate} from {self.effective_date}"
        )


class TaxCode(CanonicalModel):
    """A tax code of a jurisdiction. `rate` is a percentage (20.0000 = 20 %), so 8.875 % fits."""

    code = models.CharField(max_length=30)
    jurisdiction = models.CharField(max_length=60)
    rate = RateField(max_digits=7, decimal_places=4)
    status = lifecycle_status_field(ReferenceStatus, default=ReferenceStatus.ACTIVE)

    TRANSITIONS = REFERENCE_TRANSITIONS

    class Meta:
        ordering = ["jurisdiction", "code"]
        constraints = [
            models.UniqueConstraint(fields=["jurisdiction", "code"], name="taxcode_unique_code"),
            models.CheckConstraint(
                condition=Q(rate__gte=0) & Q(rate__lte=100), name="taxcode_rate_percentage"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.jurisdiction}:{self.code} ({self.rate} %)"


class CostCentre(CanonicalModel):
    """An HR/ERP cost centre within a legal entity."""

    code = models.CharField(max_length=30)
    name = models.CharField(max_length=200)
    legal_entity = models.ForeignKey(
        LegalEntity, on_delete=models.PROTECT, related_name="cost_centres"
    )
    status = lifecycle_status_field(ReferenceStatus, default=ReferenceStatus.ACTIVE)

    TRANSITIONS = REFERENCE_TRANSITIONS

    class Meta:
        ordering = ["legal_entity", "code"]
        constraints = [
            models.UniqueConstraint(fields=["legal_entity", "code"], name="costcentre_unique_code"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class AccountingPeriod(CanonicalModel):
    """An ERP accounting period of a legal entity; postings go only into open periods."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"
        LOCKED = "locked", "Locked"

    legal_entity = models.ForeignKey(
        LegalEntity, on_delete=models.PROTECT, related_name="accounting_periods"
    )
    start_date = models.DateField()
    end_date = models.DateField()
    status = lifecycle_status_field(Status, default=Status.OPEN)

    # Closed is the soft close: controllers may reopen for late adjustments (the history row
    # says who). Locked is the hard close after audit: final, as in the ERP.
    TRANSITIONS = {
        Status.OPEN: frozenset({Status.CLOSED}),
        Status.CLOSED: frozenset({Status.OPEN, Status.LOCKED}),
        Status.LOCKED: frozenset(),
    }

    class Meta:
        ordering = ["legal_entity", "start_date"]
        constraints = [
            models.UniqueConstraint(
                fields=["legal_entity", "start_date"], name="accountingperiod_unique_start"
            ),
            models.CheckConstraint(
                condition=Q(end_date__gte=F("start_date")), name="accountingperiod_end_after_start"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.legal_entity_id} {self.start_date}..{self.end_date} ({self.status})"

    def clean(self) -> None:
        """Refuse a period that overlaps another period of the same legal entity."""
        super().clean()
        if self.start_date is None or self.end_date is None or self.legal_entity_id is None:
            return
        overlapping = (
            AccountingPeriod.objects.filter(
                legal_entity_id=self.legal_entity_id,
                start_date__lte=self.end_date,
                end_date__gte=self.start_date,
            )
            .exclude(pk=self.pk)
            .first()
        )
        if overlapping is not None:
            raise ValidationError(
                f"overlaps period {overlapping.start_date}..{overlapping.end_date}"
            )
