"""Exception queues: every record that could not be processed or delivered, owned by a team."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from sync.models.fields import MoneyField
from sync.models.history import HistoryActorFields, LeanHistoricalRecords


class Queue(models.TextChoices):
    CUSTOMER_MASTER = "customer_master", "Customer master"
    PROJECT_SETUP = "project_setup", "Project set-up"
    TIME_AND_EXPENSE = "time_and_expense", "Time and expense"
    BILLING = "billing", "Billing"
    TAX = "tax", "Tax"
    INTEGRATION_OPS = "integration_ops", "Integration ops"
    MAPPING = "mapping", "Mapping admins"


class Stage(models.TextChoices):
    PARSE = "parse", "Parse"
    MAP = "map", "Map"
    OWN = "own", "Ownership"
    VALIDATE = "validate", "Validate"
    DELIVER = "deliver", "Deliver"


class ExceptionItem(models.Model):
    """One record that failed at one stage, with what failed and what it puts at risk.

    At most one open item per (record key, stage): a re-run that fails again updates the item
    (occurrences, last failure) instead of adding another. `root_cause` groups items with one
    cause (queue + code + the offending reference) so a hundred of them are worked as one.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        RESOLVED = "resolved", "Resolved"
        IGNORED = "ignored", "Ignored"

    OPEN_STATUSES = (Status.OPEN, Status.IN_PROGRESS)

    queue = models.CharField(max_length=24, choices=Queue.choices)
    stage = models.CharField(max_length=16, choices=Stage.choices)
    code = models.CharField(max_length=64)
    category = models.CharField(max_length=32, help_text="business, technical or configuration")
    message = models.TextField()
    suggested_fix = models.TextField(blank=True)
    detail = models.JSONField(default=dict, blank=True, help_text="Rule or target response.")
    record_key = models.CharField(
        max_length=255, help_text="system:entity:external id of the failing record."
    )
    inbox_item = models.ForeignKey(
        "pipeline.InboxItem", on_delete=models.SET_NULL, null=True, blank=True
    )
    delivery = models.ForeignKey(
        "pipeline.Delivery", on_delete=models.SET_NULL, null=True, blank=True
    )
    payload = models.JSONField(default=dict, blank=True)
    money_at_risk = MoneyField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    correlation_id = models.CharField(max_length=64, db_index=True, blank=True)
    run = models.ForeignKey("pipeline.SyncRun", on_delete=models.SET_NULL, null=True, blank=True)
    root_cause = models.CharField(max_length=64, db_index=True)
    cause = models.CharField(
        max_length=255, blank=True, help_text="The offending reference the root cause names."
    )
    legal_entity = models.CharField(
        max_length=20,
        blank=True,
        help_text="Code of the legal entity the record belongs to (sync.LegalEntity.code, or "
        "the source's code when it is not mapped yet); blank when the raiser does not know it.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    reason = models.TextField(blank=True, help_text="Why it was resolved or ignored.")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_exceptions",
    )
    occurrences = models.PositiveIntegerField(default=1)
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    sla_due_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    history = LeanHistoricalRecords(bases=[HistoryActorFields])

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["record_key", "stage"],
                condition=Q(status__in=["open", "in_progress"]),
                name="exception_one_open_per_record_stage",
            ),
        ]
        indexes = [
            models.Index(fields=["queue", "status", "sla_due_at"], name="exception_queue"),
            # The Exceptions pages read open items in list order (most money at risk first,
            # then the lowest id: `exception_items_page`), whole or by queue or root cause, and
            # the exception summary's refresh totals them by root cause. Partial (open items
            # only) and covering, so a page of the list is a range of one index and the refresh
            # an index-only scan
            # (bench/portal_pages.py; bench/README.md "Portal pages at 1,000,000 exception
            # items"). No NULLS LAST in them (SQLite's CREATE INDEX has none): the list reads
            # the items with an amount and those without as two ranges. Built plainly, not
            # CONCURRENTLY (that needs a non-atomic, PostgreSQL-only migration): at 1,000,000
            # items each takes 1-3 s, during which new items wait; on a much larger table
            # build them by hand with CREATE INDEX CONCURRENTLY before migrating.
            models.Index(
                fields=["-money_at_risk", "id"],
                condition=Q(status__in=["open", "in_progress"]),
                name="exception_open_by_money",
            ),
            models.Index(
                fields=["queue", "-money_at_risk", "id"],
                include=["currency", "sla_due_at", "first_failed_at"],
                condition=Q(status__in=["open", "in_progress"]),
                name="exception_open_by_queue",
            ),
            # Also what the exception summary's refresh reads (every column it groups and
            # sums is here): an index-only pass instead of the wide rows (payload, message).
            models.Index(
                fields=["root_cause", "-money_at_risk", "id"],
                include=["queue", "currency", "first_failed_at", "legal_entity", "sla_due_at"],
                condition=Q(status__in=["open", "in_progress"]),
                name="exception_open_by_cause",
            ),
            # A user limited to some legal entities reads the list through this one (their
            # entities' items and those of no known entity, most money first).
            models.Index(
                fields=["legal_entity", "-money_at_risk", "id"],
                condition=Q(status__in=["open", "in_progress"]),
                name="exception_open_by_entity",
            ),
            # The summary's 14-day trend counts every item (open or not) by its first failure.
            models.Index(
                fields=["first_failed_at"],
                include=["queue", "legal_entity"],
                name="exception_first_failed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_queue_display()}: {self.code} on {self.record_key}"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class ExceptionComment(models.Model):
    item = models.ForeignKey(ExceptionItem, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    history = LeanHistoricalRecords(bases=[HistoryActorFields])

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"comment on {self.item_id} by {self.author_id}"


class ExceptionSummaryRow(models.Model):
    """The open items of one (queue, root cause, legal entity, currency), as of the last
    refresh (`sync.pipeline.exception_summary`): what the queue cards and the root-cause groups
    add up instead of reading every open item. Derived data, replaced whole by each refresh;
    no history."""

    queue = models.CharField(max_length=24)
    root_cause = models.CharField(max_length=64)
    legal_entity = models.CharField(max_length=20, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    items = models.PositiveIntegerField()
    without_amount = models.PositiveIntegerField()
    cents = models.BigIntegerField(null=True)  # the amounts, each rounded to the cent; None: none
    oldest = models.DateTimeField()
    past_sla = models.PositiveIntegerField()  # past their SLA at the refresh
    first_item_id = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["queue"], name="exception_summary_queue")]

    def __str__(self) -> str:
        return f"{self.queue} {self.root_cause} {self.legal_entity} {self.currency}: {self.items}"


class ExceptionSummaryDay(models.Model):
    """Items (open or not) first failing on one day, by queue and legal entity, for the queue
    cards' 14-day trend; replaced with the summary rows."""

    queue = models.CharField(max_length=24)
    legal_entity = models.CharField(max_length=20, blank=True)
    day = models.DateField()
    raised = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.queue} {self.legal_entity} {self.day}: {self.raised}"


class ExceptionSummaryRefresh(models.Model):
    """One row: when the summary was last computed (None: never) and how long that took.
    Its row lock serialises refreshes."""

    computed_at = models.DateTimeField(null=True, blank=True)
    took_ms = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"exception summary as of {self.computed_at}"
