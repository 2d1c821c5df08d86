"""Quote to cash, the cash end: invoice candidates, invoices and lines, payments, revenue."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from sync.models.base import CanonicalModel, lifecycle_status_field
from sync.models.commercial import Contract, Customer
from sync.models.delivery import Milestone, Project, UsageRecord
from sync.models.fields import MoneyField, MoneyProperty, QuantityField, RateField
from sync.models.reference import Currency, LegalEntity, TaxCode
from sync.models.transactions import Expense, TimeEntry


class InvoiceCandidate(CanonicalModel):
    """A billable amount whose conditions are met (approved time, milestone done, usage).

    Frozen while invoiced (its amount is on an issued invoice) and once cancelled: a correction
    is a reversal plus a new entry, never an edit. Voiding the invoice returns the candidate to
    pending, where it may be corrected and billed again.
    """

    class SourceKind(models.TextChoices):
        TIME = "time", "Time"
        MILESTONE = "milestone", "Milestone"
        USAGE = "usage", "Usage"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        INVOICED = "invoiced", "Invoiced"
        CANCELLED = "cancelled", "Cancelled"

    contract = models.ForeignKey(
        Contract, on_delete=models.PROTECT, related_name="invoice_candidates"
    )
    project = models.ForeignKey(
        Project, on_delete=models.PROTECT, related_name="invoice_candidates"
    )
    source_kind = models.CharField(max_length=20, choices=SourceKind.choices)
    amount = MoneyField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    status = lifecycle_status_field(Status, default=Status.PENDING)
    # The first day of the month billed (time and usage); None for a milestone.
    period_start = models.DateField(null=True, blank=True)

    money = MoneyProperty(amount="amount", currency="currency")

    # Voiding an invoice returns its candidates to pending so they are billed again.
    TRANSITIONS = {
        Status.PENDING: frozenset({Status.INVOICED, Status.CANCELLED}),
        Status.INVOICED: frozenset({Status.PENDING}),
        Status.CANCELLED: frozenset(),
    }
    FROZEN_STATUSES = frozenset({Status.INVOICED, Status.CANCELLED})

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.source_kind} {self.amount} {self.currency_id}"


class InvoiceCandidateSource(models.Model):
    """One record a candidate bills: exactly one of a time entry, an expense, a milestone or a
    usage record, with the quantity and unit amount it was priced at (its invoice line is the
    sum of its `line_key`'s sources, rounded once).

    Each source record is billed by at most one candidate: a unique constraint per kind, so a
    second candidate run (or a racing one) cannot bill it twice. An append-only link written
    with its candidate (whose history records who made it); not a canonical record itself.
    """

    candidate = models.ForeignKey(
        InvoiceCandidate, on_delete=models.CASCADE, related_name="sources"
    )
    time_entry = models.ForeignKey(
        TimeEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="billing_links"
    )
    expense = models.ForeignKey(
        Expense, on_delete=models.PROTECT, null=True, blank=True, related_name="billing_links"
    )
    milestone = models.ForeignKey(
        Milestone, on_delete=models.PROTECT, null=True, blank=True, related_name="billing_links"
    )
    usage_record = models.ForeignKey(
        UsageRecord, on_delete=models.PROTECT, null=True, blank=True, related_name="billing_links"
    )
    # Sources with one key make one invoice line (a worker at one rate, a category, ...).
    line_key = models.CharField(max_length=200)
    description = models.CharField(max_length=500)
    quantity = QuantityField(max_digits=18, decimal_places=4)
    unit_amount = RateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["candidate", "line_key", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["time_entry"], name="billing_source_time_entry_once"),
            models.UniqueConstraint(fields=["expense"], name="billing_source_expense_once"),
            models.UniqueConstraint(fields=["milestone"], name="billing_source_milestone_once"),
            models.UniqueConstraint(
                fields=["usage_record"], name="billing_source_usage_record_once"
            ),
            models.CheckConstraint(
                condition=(
                    Q(time_entry__isnull=False)
                    & Q(expense__isnull=True)
                    & Q(milestone__isnull=True)
                    & Q(usage_record__isnull=True)
                )
                | (
                    Q(time_entry__isnull=True)
                    & Q(expense__isnull=False)
                    & Q(milestone__isnull=True)
                    & Q(usage_record__isnull=True)
                )
                | (
                    Q(time_entry__isnull=True)
                    & Q(expense__isnull=True)
                    & Q(milestone__isnull=False)
                    & Q(usage_record__isnull=True)
                )
                | (
                    Q(time_entry__isnull=True)
                    & Q(expense__isnull=True)
                    & Q(milestone__isnull=True)
                    & Q(usage_record__isnull=False)
                ),
                name="billing_source_exactly_one_record",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.line_key} {self.quantity} x {self.unit_amount}"


class Invoice(CanonicalModel):
    """A receivable issued by a legal entity. `number` is given by billing/ERP when issued.

    Only a draft is edited. Once issued (open, paid, uncollectible, void) the customer and the
    ledger hold it: a correction is a reversal plus a new entry (void, or a credit note, and a
    new invoice), never an edit. The number and issue date are set on the draft -> open save.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"
        UNCOLLECTIBLE = "uncollectible", "Uncollectible"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    legal_entity = models.ForeignKey(LegalEntity, on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=64, unique=True, null=True, blank=True)
    issue_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    total = MoneyField()
    status = lifecycle_status_field(Status, default=Status.DRAFT)

    total_money = MoneyProperty(amount="total", currency="currency")

    # The Stripe-style invoice lifecycle, plus paid -> open when the payment is reversed.
    TRANSITIONS = {
        Status.DRAFT: frozenset({Status.OPEN, Status.VOID}),
        Status.OPEN: frozenset({Status.PAID, Status.VOID, Status.UNCOLLECTIBLE}),
        Status.UNCOLLECTIBLE: frozenset({Status.PAID, Status.VOID}),
        Status.PAID: frozenset({Status.OPEN}),
        Status.VOID: frozenset(),
    }
    FROZEN_STATUSES = frozenset({Status.OPEN, Status.PAID, Status.VOID, Status.UNCOLLECTIBLE})

    class Meta:
        ordering = ["-issue_date", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(due_date__isnull=True)
                | Q(issue_date__isnull=True)
                | Q(due_date__gte=F("issue_date")),
                name="invoice_due_after_issue",
            ),
        ]

    def __str__(self) -> str:
        return self.number or f"draft invoice {self.pk}"


class InvoiceLine(CanonicalModel):
    """One line of an invoice; `amount` is the rounded line total, in the invoice's currency.

    A void line is final: a correction is a reversal plus a new entry, never an edit. (Active
    lines of an issued invoice are not frozen by this rule, which sees only the line's own
    status.)
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        VOID = "void", "Void"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    candidate = models.ForeignKey(
        InvoiceCandidate, on_delete=models.PROTECT, null=True, blank=True, related_name="lines"
    )
    description = models.CharField(max_length=500)
    quantity = QuantityField()
    unit_amount = RateField()
    amount = MoneyField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    tax_code = models.ForeignKey(
        TaxCode, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status = lifecycle_status_field(Status, default=Status.ACTIVE)

    money = MoneyProperty(amount="amount", currency="currency")
    unit_amount_money = MoneyProperty(amount="unit_amount", currency="currency")

    TRANSITIONS = {Status.ACTIVE: frozenset({Status.VOID}), Status.VOID: frozenset()}
    FROZEN_STATUSES = frozenset({Status.VOID})

    class Meta:
        ordering = ["invoice", "pk"]

    def __str__(self) -> str:
        return self.description

    def clean(self) -> None:
        super().clean()
        if self.invoice_id and self.currency_id and self.invoice.currency_id != self.currency_id:
            raise ValidationError({"currency": "A line is in its invoice's currency."})


class Payment(CanonicalModel):
    """Cash received against an invoice (cash application from ERP).

    Frozen once applied or reversed: a correction is a reversal plus a new entry, never an edit.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        APPLIED = "applied", "Applied"
        REVERSED = "reversed", "Reversed"

    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="payments")
    amount = MoneyField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    received_date = models.DateField()
    status = lifecycle_status_field(Status, default=Status.RECEIVED)

    money = MoneyProperty(amount="amount", currency="currency")

    TRANSITIONS = {
        Status.RECEIVED: frozenset({Status.APPLIED, Status.REVERSED}),
        Status.APPLIED: frozenset({Status.REVERSED}),
        Status.REVERSED: frozenset(),
    }
    FROZEN_STATUSES = frozenset({Status.APPLIED, Status.REVERSED})

    class Meta:
        ordering = ["-received_date"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency_id} on {self.received_date}"


class RevenueEntry(CanonicalModel):
    """Revenue of a project recognised (or scheduled) in a period.

    Frozen once recognised (in the ledger) or reversed: a correction is a reversal plus a new
    entry, never an edit.
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        RECOGNISED = "recognised", "Recognised"
        REVERSED = "reversed", "Reversed"

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="revenue_entries")
    period_date = models.DateField()
    amount = MoneyField()
    currency = models.ForeignKey(Currency, on_delete=models.PROTECT, related_name="+")
    status = lifecycle_status_field(Status, default=Status.SCHEDULED)

    money = MoneyProperty(amount="amount", currency="currency")

    TRANSITIONS = {
        Status.SCHEDULED: frozenset({Status.RECOGNISED, Status.REVERSED}),
        Status.RECOGNISED: frozenset({Status.REVERSED}),
        Status.REVERSED: frozenset(),
    }
    FROZEN_STATUSES = frozenset({Status.RECOGNISED, Status.REVERSED})

    class Meta:
        verbose_name_plural = "revenue entries"
        ordering = ["-period_date"]

    def __str__(self) -> str:
        return f"{self.project_id} {self.period_date} {self.amount} {self.currency_id}"
