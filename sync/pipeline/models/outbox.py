"""The outbox: one delivery per (target, operation, record version), written with the upsert."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import models


class Delivery(models.Model):
    """A write owed to a target system.

    Created in the same transaction as the canonical upsert, so a committed record always has
    its deliveries and a rolled-back one has none. `idempotency_key` is unique: re-processing
    the same record version cannot enqueue a second delivery. Workers claim due rows with
    `select_for_update(skip_locked=True)`; retries are driven by `next_attempt_at` and a beat
    sweeper, never by task countdowns.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        IN_FLIGHT = "in_flight", "In flight"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (exception item)"

    # Configuration and reference data: PROTECT is enforced by Django, with no per-row database
    # constraint check on a table that takes a row per posting (docs/decisions.md #21). No index
    # of its own: claims read `delivery_pending`, which leads with it, and nothing else asks for
    # one connection's deliveries of every state (connections are disabled, never deleted).
    connection = models.ForeignKey(
        "pipeline.Connection", on_delete=models.PROTECT, db_constraint=False, db_index=False
    )
    operation = models.CharField(max_length=64)
    # Indexed by `delivery_record` (content type, object id), which serves this key alone too.
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    object_id = models.CharField(max_length=64)
    record_version = models.PositiveIntegerField()
    # Unique by a constraint (see Meta), not `unique=True`: on PostgreSQL that would also build
    # a `varchar_pattern_ops` twin index, which no query uses, on every delivery.
    idempotency_key = models.CharField(max_length=200)
    external_id = models.CharField(
        max_length=255, help_text="The key the target knows this record by (upsert / look-up)."
    )
    payload = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    in_flight_since = models.DateTimeField(null=True, blank=True)
    # Set by each claim: only the claimer's outcome may move the row on (see sync/pipeline/outbox/).
    claim_token = models.UUIDField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    target_id = models.CharField(max_length=255, blank=True)
    correlation_id = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            # Claims read the pending rows of each active connection in due order: a backlog
            # of a disabled connection (or one whose circuit is open) is never walked through.
            models.Index(
                fields=["connection", "next_attempt_at", "id"],
                name="delivery_pending",
                condition=models.Q(state="pending"),
            ),
            models.Index(
                fields=["in_flight_since"],
                name="delivery_in_flight",
                condition=models.Q(state="in_flight"),
            ),
            # Failed deliveries by operation, counted by /metrics; a new delivery is never
            # failed, so the posting path does not pay for this index.
            models.Index(
                fields=["operation"], name="delivery_failed", condition=models.Q(state="failed")
            ),
            models.Index(fields=["content_type", "object_id"], name="delivery_record"),
            models.Index(fields=["correlation_id"], name="delivery_correlation"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="delivery_idempotency_key"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.external_id} v{self.record_version} ({self.state})"
