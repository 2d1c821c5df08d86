"""Field ownership rules: which system owns an entity's field, effective-dated.

A rule with a blank `field` is the entity's default; a rule for a field overrides it. Dates
are half-open: a rule applies on `effective_from <= day < effective_to` (empty `effective_to`:
open-ended), so a handover ends one rule and starts the next on the same date. No two rules
for the same entity and field may be in force on the same day (`clean()`; the service checks
it under a lock).

An `OwnershipChange` is a person's request to change a rule, reviewed like a mapping version:
draft → submitted → published (by another mapping admin: four eyes), or withdrawn. Publishing
writes the rule through `ownership_rule_set`; a published or withdrawn change is read-only.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q, QuerySet

from sync.mappings.models.systems import System
from sync.models.history import HistoryActorFields, LeanHistoricalRecords

canonical_name = RegexValidator(
    r"^[a-z][a-z0-9_]*$", "Use the canonical name in snake case, e.g. time_entry or cost_centre."
)


class OwnershipRule(models.Model):
    """`owner_system` owns `entity`.`field` (or the whole entity, when `field` is blank)."""

    entity = models.CharField(
        max_length=64,
        validators=[canonical_name],
        help_text="Canonical entity, e.g. project, worker, time_entry.",
    )
    field = models.CharField(
        max_length=64,
        blank=True,
        validators=[canonical_name],
        help_text="Canonical field name; blank means the entity default.",
    )
    owner_system = models.CharField(max_length=16, choices=System.choices)
    effective_from = models.DateField()
    effective_to = models.DateField(
        null=True,
        blank=True,
        help_text="First day the rule no longer applies (exclusive); empty means open-ended.",
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = LeanHistoricalRecords(bases=[HistoryActorFields])

    class Meta:
        ordering = ["entity", "field", "effective_from"]
        indexes = [models.Index(fields=["entity", "field"], name="mappings_ownership_key")]
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "field", "effective_from"],
                name="mappings_ownership_one_rule_per_start",
            ),
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True)
                | Q(effective_to__gt=models.F("effective_from")),
                name="mappings_ownership_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        target = f"{self.entity}.{self.field}" if self.field else f"{self.entity} (default)"
        until = f" until {self.effective_to}" if self.effective_to else ""
        return f"{target}: {self.owner_system} from {self.effective_from}{until}"

    def overlapping_rules(self) -> QuerySet[OwnershipRule]:
        """Other rules for the same entity and field in force on at least one common day."""
        rules = OwnershipRule.objects.filter(entity=self.entity, field=self.field).filter(
            Q(effective_to__isnull=True) | Q(effective_to__gt=self.effective_from)
        )
        if self.effective_to is not None:
            rules = rules.filter(effective_from__lt=self.effective_to)
        if self.pk is not None:
            rules = rules.exclude(pk=self.pk)
        return rules

    def applies_on(self, day: dt.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)

    def clean(self) -> None:
        if not isinstance(self.effective_from, dt.date):
            return  # the field's own validation reports it
        if self.effective_to is not None and self.effective_to <= self.effective_from:
            raise ValidationError(
                {"effective_to": "The rule must end after it starts."}, code="ends_before_start"
            )
        clash = self.overlapping_rules()
        if getattr(self, "handover_allowed", False):
            # ownership_rule_set will end an open-ended earlier rule on this rule's start.
            clash = clash.exclude(effective_to__isnull=True, effective_from__lt=self.effective_from)
        clash = clash.first()
        if clash is not None:
            raise ValidationError(
                f"Overlaps the rule “{clash}”: end that rule first or choose other dates.",
                code="overlap",
            )


class OwnershipChange(models.Model):
    """A proposed ownership rule: `owner_system` owns `entity`.`field` from `effective_from`.

    Written by `sync.mappings.ownership_services` only (status moves along `TRANSITIONS`);
    `rule` is the rule its publishing wrote.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        PUBLISHED = "published", "Published"
        WITHDRAWN = "withdrawn", "Withdrawn"

    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        Status.DRAFT: frozenset({Status.SUBMITTED, Status.WITHDRAWN}),
        Status.SUBMITTED: frozenset({Status.PUBLISHED, Status.WITHDRAWN}),
        Status.PUBLISHED: frozenset(),
        Status.WITHDRAWN: frozenset(),
    }
    PENDING_STATUSES: ClassVar[frozenset[str]] = frozenset({Status.DRAFT, Status.SUBMITTED})

    entity = models.CharField(max_length=64, validators=[canonical_name])
    field = models.CharField(
        max_length=64,
        blank=True,
        validators=[canonical_name],
        help_text="Canonical field name; blank means the entity default.",
    )
    owner_system = models.CharField(max_length=16, choices=System.choices)
    effective_from = models.DateField()
    effective_to = models.DateField(
        null=True,
        blank=True,
        help_text="First day the rule no longer applies (exclusive); empty means open-ended.",
    )
    reason = models.TextField(help_text="Why the owner changes: the reviewer reads this.")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True, editable=False
    )
    rule = models.ForeignKey(
        OwnershipRule,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="changes",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    decided_at = models.DateTimeField(null=True, blank=True, editable=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        help_text="Who published or withdrew it.",
    )

    history = LeanHistoricalRecords(bases=[HistoryActorFields])

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["entity", "field"], name="mappings_ownchange_key")]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True)
                | Q(effective_to__gt=models.F("effective_from")),
                name="mappings_ownchange_ends_after_start",
            ),
        ]

    def __str__(self) -> str:
        target = f"{self.entity}.{self.field}" if self.field else f"{self.entity} (default)"
        return f"change {self.pk}: {target} → {self.owner_system} from {self.effective_from}"

    @classmethod
    def transition_allowed(cls, *, from_status: str, to_status: str) -> bool:
        return to_status in cls.TRANSITIONS.get(from_status, frozenset())

    @property
    def is_pending(self) -> bool:
        return self.status in self.PENDING_STATUSES

    def clean(self) -> None:
        if (
            isinstance(self.effective_from, dt.date)
            and self.effective_to is not None
            and self.effective_to <= self.effective_from
        ):
            raise ValidationError(
                {"effective_to": "The rule must end after it starts."}, code="ends_before_start"
            )
