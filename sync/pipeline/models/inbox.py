"""The inbox: every inbound payload, stored before it is processed, and pull positions."""

from __future__ import annotations

from django.db import models


class InboxItem(models.Model):
    """One inbound record as the source sent it (a pulled page row, a webhook, a file row).

    A payload equal to the latest one stored for the same record is skipped cheaply; a changed
    payload is a new row, and so is one that changes back to an earlier value.
    `batch_id` names the `inbox_store` call that wrote the row.

    Indexed for how the inbox is read: pending items in order, the latest payload of a record,
    a correlation id, parked items (counted by /metrics: #24). Marking an item processed
    rewrites its row and enters it again in every index whose condition it meets (the status is
    in `inbox_pending`'s condition, so the update is never HOT), so the
    connection, run and batch are not indexed: nothing looks items up by them (runs and
    connections are never deleted, only disabled or kept as history), and each index would
    cost an entry per processed item (docs/decisions.md #21).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSED = "processed", "Processed"
        PARKED = "parked", "Parked as an exception"

    connection = models.ForeignKey(
        "pipeline.Connection", on_delete=models.PROTECT, null=True, blank=True, db_index=False
    )
    system = models.CharField(max_length=16)
    entity = models.CharField(max_length=48)
    external_id = models.CharField(max_length=255)
    payload = models.JSONField()
    payload_hash = models.CharField(max_length=64)
    batch_id = models.UUIDField(null=True, blank=True)
    received_at = models.DateTimeField()
    correlation_id = models.CharField(max_length=64)
    run = models.ForeignKey(
        "pipeline.SyncRun", on_delete=models.SET_NULL, null=True, blank=True, db_index=False
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Mapping versions the record was processed with: {mapping set slug: version number}.
    mapping_versions = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # Only pending items: a processed item leaves this index instead of moving in it.
            models.Index(
                fields=["system", "entity", "id"],
                name="inbox_pending",
                condition=models.Q(status="pending"),
            ),
            # Parked items, counted by /metrics: a stored or processed item never enters it.
            models.Index(fields=["id"], name="inbox_parked", condition=models.Q(status="parked")),
            models.Index(fields=["correlation_id"], name="inbox_correlation"),
            models.Index(fields=["system", "entity", "external_id", "id"], name="inbox_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.system}:{self.entity}:{self.external_id}"


class PullPosition(models.Model):
    """How far a (connection, entity) pull has got; moved only inside the transaction that
    stored its page, so it never runs ahead of what was committed.

    `since`: where the next pull starts, or where the pull under way started (a change time or
    a feed position, in the vendor's own format); `cursor`: where the pull under way resumes,
    after its last committed page (None: no pull under way); `reached`: the latest change time
    the pull under way has committed; `started_at`: when it started, by our clock.
    """

    connection = models.ForeignKey("pipeline.Connection", on_delete=models.CASCADE)
    entity = models.CharField(max_length=48)
    since = models.TextField(null=True, blank=True)
    # Unbounded: a vendor's opaque query locator may be long, and dropping it re-reads a pull.
    cursor = models.TextField(null=True, blank=True)
    reached = models.TextField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "entity"], name="pull_position_once"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.entity} since {self.since}"
