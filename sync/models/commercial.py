"""What was sold: customers, opportunities, contracts and effective-dated rate cards (CRM-owned)."""

from __future__ import annotations

import datetime as dt

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from sync.models.base import CanonicalModel, lifecycle_status_field
from sync.models.fields import MoneyField, MoneyProperty, RateField
from sync.models.reference import (
    REFERENCE_TRANSITIONS,
    Currency,
    LegalEntity,
    ReferenceStatus,
)


class Customer(CanonicalModel):
    """An account validated against ERP (duplicates, tax id, credit) before projects use it."""

    class Status(models.TextChoices):
        PROSPECT = "prospect", "Prospect"
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPROVED = "approved", "Approved"
        ON_HOLD = "on_hold", "On hold"
        INACTIVE = "inactive", "Inactive"

    class CreditStatus(models.TextChoices):
        UNCHECKED = "unchecked", "Not checked"
        GOOD = "good", "Good"
        WATCH = "watch", "Watch"
        REFUSED = "refused", "Refused"

    name = models.CharField(max_length=200)
    legal_entity = models.ForeignKey(
        LegalEntity, on_delete=models.PROTECT, related_name="customers"
    )
    tax_id = models.CharField(max_length=50, blank=True)
    credit_status = models.CharField(
        max_length=20, choices=CreditStatus.choices, default=CreditStatus.UNCHECKED
    )
    status = lifecycle_status_field(Status, default=Status.PROSPECT)

    # Approval is ERP's decision; a rejected request goes back to prospect. An inactive account
    # comes back only through approval again.
    TRANSITIONS = {
        Status.PROSPECT: frozenset({Status.PENDING_APPROVAL, Status.INACTIVE}),
        Status.PENDING_APPROVAL: frozenset({Status.APPROVED, Status.PROSPECT, Status.INACTIVE}),
        Status.APPROVED: frozenset({Status.ON_HOLD, Status.INACTIVE}),
        Status.ON_HOLD: frozenset({Status.APPROVED, Status.INACTIVE}),
        Status.INACTIVE: frozenset({Status.PENDING_APPROVAL}),
    }

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Opportunity(CanonicalModel):
    """A CRM deal; winning it starts customer validation and project provisioning."""

    class Stage(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED_WON = "closed_won", "Closed won"
        CLOSED_LOST = "closed_lost", "Closed lost"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="opportunities")
    name = models.CharField(max_length=200)
    amount = MoneyField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    close_date = models.DateField(null=True, blank=True)
    stage = lifecycle_status_field(Stage, default=Stage.OPEN)

    money = MoneyProperty(amount="amount", currency="currency")

    STATUS_FIELD = "stage"  # CRM's word for an opportunity's lifecycle
    # A won deal has started delivery and is not un-won; a lost one may be revived.
    TRANSITIONS = {
        Stage.OPEN: frozenset({Stage.CLOSED_WON, Stage.CLOSED_LOST}),
        Stage.CLOSED_LOST: frozenset({Stage.OPEN}),
        Stage.CLOSED_WON: frozenset(),
    }

    class Meta:
        verbose_name_plural = "opportunities"
        ordering = ["-close_date", "name"]

    def __str__(self) -> str:
        return self.name


class Contract(CanonicalModel):
    """A statement of work: how and in which currency the customer is billed."""

    class BillingModel(models.TextChoices):
        TIME_AND_MATERIALS = "time_and_materials", "Time and materials"
        FIXED_FEE_MILESTONES = "fixed_fee_milestones", "Fixed fee (milestones)"
        USAGE = "usage", "Usage / recurring"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        COMPLETED = "completed", "Completed"
        TERMINATED = "terminated", "Terminated"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="contracts")
    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.PROTECT, null=True, blank=True, related_name="contracts"
    )
    name = models.CharField(max_length=200)
    billing_model = models.CharField(max_length=30, choices=BillingModel.choices)
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    value = MoneyField()
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True)
    status = lifecycle_status_field(Status, default=Status.DRAFT)

    value_money = MoneyProperty(amount="value", currency="currency")

    TRANSITIONS = {
        Status.DRAFT: frozenset({Status.ACTIVE, Status.TERMINATED}),
        Status.ACTIVE: frozenset({Status.SUSPENDED, Status.COMPLETED, Status.TERMINATED}),
        Status.SUSPENDED: frozenset({Status.ACTIVE, Status.TERMINATED}),
        Status.COMPLETED: frozenset(),
        Status.TERMINATED: frozenset(),
    }

    class Meta:
        ordering = ["-start_date", "name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="contract_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RateCard(CanonicalModel):
    """A named set of bill rates in one currency for one legal entity."""

    name = models.CharField(max_length=200)
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    legal_entity = models.ForeignKey(
        LegalEntity, on_delete=models.PROTECT, related_name="rate_cards"
    )
    status = lifecycle_status_field(ReferenceStatus, default=ReferenceStatus.ACTIVE)

    TRANSITIONS = REFERENCE_TRANSITIONS

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.currency_id})"


class RateCardLine(CanonicalModel):
    """The bill rate of a role (or worker grade) on a card, over an inclusive date range.

    `effective_to` is the last day the rate applies; None means open-ended. Active lines of the
    same card and role must not overlap (checked in `clean()`: SQLite has no exclusion
    constraint, so services call `full_clean()` before saving).
    """

    rate_card = models.ForeignKey(RateCard, on_delete=models.CASCADE, related_name="lines")
    role = models.CharField(max_length=100, help_text="Role or worker grade.")
    service_item_code = models.CharField(max_length=60, blank=True)
    bill_rate = RateField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True)
    status = lifecycle_status_field(ReferenceStatus, default=ReferenceStatus.ACTIVE)

    bill_rate_money = MoneyProperty(amount="bill_rate", currency="currency")

    TRANSITIONS = REFERENCE_TRANSITIONS

    class Meta:
        ordering = ["rate_card", "role", "effective_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True) | Q(effective_to__gte=F("effective_from")),
                name="ratecardline_to_after_from",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.bill_rate} {self.currency_id} from {self.effective_from}"

    def clean(self) -> None:
        """Refuse a line overlapping another active line of the same card and role, or in a
        currency other than its card's."""
        super().clean()
        if self.rate_card_id is None or self.effective_from is None:
            return
        if self.currency_id and self.rate_card.currency_id != self.currency_id:
            raise ValidationError({"currency": "A line is in its rate card's currency."})
        if self.status != ReferenceStatus.ACTIVE:
            return
        last_day = self.effective_to or dt.date.max
        clash = (
            RateCardLine.objects.filter(
                rate_card_id=self.rate_card_id,
                role=self.role,
                status=ReferenceStatus.ACTIVE,
                effective_from__lte=last_day,
            )
            .filter(Q(effective_to__isnull=True) | Q(effective_to__gte=self.effective_from))
            .exclude(pk=self.pk)
            .first()
        )
        if clash is not None:
            raise ValidationError(
                f"{self.role} already has a rate from {clash.effective_from} "
                f"to {clash.effective_to or 'open end'} on this card"
            )
