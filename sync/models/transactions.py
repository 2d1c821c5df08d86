"""Approved work that becomes cost and revenue: time entries and expenses (PSA-approved)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from sync.models.base import CanonicalModel, lifecycle_status_field
from sync.models.delivery import Project, Task, Worker
from sync.models.fields import MoneyField, MoneyProperty, QuantityField, RateField
from sync.models.reference import Currency


class ApprovalStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    POSTED = "posted", "Posted to ERP"
    INVOICED = "invoiced", "Invoiced"
    REVERSED = "reversed", "Reversed"


# PSA approves (and may recall an approval before posting); ERP posting and billing follow.
# Once posted, a correction is a reversal plus a new entry, never an edit back to draft.
APPROVAL_TRANSITIONS = {
    ApprovalStatus.DRAFT: frozenset({ApprovalStatus.SUBMITTED}),
    ApprovalStatus.SUBMITTED: frozenset({ApprovalStatus.APPROVED, ApprovalStatus.REJECTED}),
    ApprovalStatus.REJECTED: frozenset({ApprovalStatus.DRAFT, ApprovalStatus.SUBMITTED}),
    ApprovalStatus.APPROVED: frozenset({ApprovalStatus.POSTED, ApprovalStatus.REJECTED}),
    ApprovalStatus.POSTED: frozenset({ApprovalStatus.INVOICED, ApprovalStatus.REVERSED}),
    ApprovalStatus.INVOICED: frozenset({ApprovalStatus.REVERSED}),
    ApprovalStatus.REVERSED: frozenset(),
}
# Posted to the ERP (and billed): the ERP and the invoice hold these values now.
APPROVAL_FROZEN = frozenset(
    {ApprovalStatus.POSTED, ApprovalStatus.INVOICED, ApprovalStatus.REVERSED}
)


class TimeEntry(CanonicalModel):
    """Hours a worker booked to a project task on one day, with the bill rate that applies.

    Frozen once posted (posted, invoiced, reversed): a correction is a reversal plus a new
    entry, never an edit. Only the status moves on (posted -> invoiced/reversed).
    """

    # The worker, project and task are checked by statement-level triggers on PostgreSQL, not
    # by foreign keys (sync/sql/timeentry_references.sql; docs/decisions.md #28).
    worker = models.ForeignKey(
        Worker, on_delete=models.PROTECT, related_name="time_entries", db_constraint=False
    )
    # Indexed by (project, work_date) below, which also serves look-ups by project alone.
    project = models.ForeignKey(
        Project,
        on_delete=models.PROTECT,
        related_name="time_entries",
        db_index=False,
        db_constraint=False,
    )
    task = models.ForeignKey(
        Task, on_delete=models.PROTECT, related_name="time_entries", db_constraint=False
    )
    work_date = models.DateField()
    hours = QuantityField(max_digits=6, decimal_places=2)
    billable = models.BooleanField(default=True)
    bill_rate = RateField()
    # Not indexed: a handful of currencies, never a filter on its own (2 index entries a row).
    # Reference data: PROTECT is enforced by Django, an unknown code by the CURRENCY_UNKNOWN
    # rule; no per-row constraint check (docs/decisions.md #21).
    currency = models.ForeignKey(
        Currency, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    # Indexed below by a plain index (no varchar_pattern_ops twin).
    status = lifecycle_status_field(ApprovalStatus, default=ApprovalStatus.DRAFT, db_index=False)
    approved_at = models.DateTimeField(null=True, blank=True)
    # The entry's id in the PSA it was booked in: its natural key, kept on the row (unique)
    # rather than in an ExternalRef, which serves records known to several systems. A time
    # entry has one source, and an ExternalRef and its history row were two of the five rows
    # each posting wrote (docs/decisions.md #27). Its ERP id is an ExternalRef, as before.
    psa_id = models.CharField("PSA id", max_length=255, null=True, blank=True, editable=False)

    bill_rate_money = MoneyProperty(amount="bill_rate", currency="currency")

    TRANSITIONS = APPROVAL_TRANSITIONS
    FROZEN_STATUSES = APPROVAL_FROZEN

    class Meta:
        verbose_name_plural = "time entries"
        ordering = ["-work_date"]
        constraints = [
            models.CheckConstraint(condition=Q(hours__gt=0), name="timeentry_hours_positive"),
            # A constraint, not unique=True: no varchar_pattern_ops twin index on PostgreSQL.
            models.UniqueConstraint(fields=["psa_id"], name="timeentry_psa_id_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "work_date"]),
            models.Index(fields=["status"], name="timeentry_status"),
        ]

    def __str__(self) -> str:
        return f"{self.worker_id} {self.work_date} {self.hours} h"

    def clean(self) -> None:
        super().clean()
        if self.task_id and self.project_id and self.task.project_id != self.project_id:
            raise ValidationError({"task": "The task belongs to another project."})


class Expense(CanonicalModel):
    """An expense a worker incurred for a project; billable ones are recharged to the customer.

    Frozen once posted (posted, invoiced, reversed): a correction is a reversal plus a new
    entry, never an edit. Only the status moves on (posted -> invoiced/reversed).
    """

    class Category(models.TextChoices):
        TRAVEL = "travel", "Travel"
        LODGING = "lodging", "Lodging"
        MEALS = "meals", "Meals"
        SUBCONTRACT = "subcontract", "Subcontract"
        OTHER = "other", "Other"

    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="expenses")
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="expenses")
    task = models.ForeignKey(
        Task, on_delete=models.PROTECT, null=True, blank=True, related_name="expenses"
    )
    incurred_date = models.DateField()
    amount = MoneyField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.OTHER)
    billable = models.BooleanField(default=True)
    status = lifecycle_status_field(ApprovalStatus, default=ApprovalStatus.DRAFT)
    approved_at = models.DateTimeField(null=True, blank=True)
    # The expense's id in the PSA it was entered in: its natural key, on the row (unique) like
    # TimeEntry.psa_id (docs/decisions.md #27); its ERP report id is an ExternalRef.
    psa_id = models.CharField("PSA id", max_length=255, null=True, blank=True, editable=False)
    # The category as the PSA names it (a firm's own list: "Hotel", "Mileage"…), which the
    # expense-category mapping translates for the ERP; `category` is the canonical grouping.
    psa_category = models.CharField("PSA category", max_length=100, blank=True)

    money = MoneyProperty(amount="amount", currency="currency")

    TRANSITIONS = APPROVAL_TRANSITIONS
    FROZEN_STATUSES = APPROVAL_FROZEN

    class Meta:
        ordering = ["-incurred_date"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="expense_amount_positive"),
            # A constraint, not unique=True: no varchar_pattern_ops twin index on PostgreSQL.
            models.UniqueConstraint(fields=["psa_id"], name="expense_psa_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.worker_id} {self.incurred_date} {self.amount} {self.currency_id}"

    def clean(self) -> None:
        super().clean()
        if self.task_id and self.project_id and self.task.project_id != self.project_id:
            raise ValidationError({"task": "The task belongs to another project."})
