"""Storage of the emulated vendor systems: generic records, a change feed, idempotency keys.

Every emulated object (a Salesforce Account, a Kantata time entry, a SCIM User, a NetSuite
customer, a Stripe invoice…) is one `SandboxRecord` row keyed by (system, object_type). The
vendor's own field names live in `data` (JSON); what the emulators filter, sort or page on at
scale is promoted to indexed columns:

- `id`            the vendor id's numeric core (each dialect formats it: "001000000000000042"
                  for Salesforce, "42" for Kantata); keyset paging is `id > last ORDER BY id`.
- `external_id`   the caller's key for upserts (Salesforce external-id field, SCIM externalId,
                  NetSuite externalId); unique per (system, object_type) when set.
- `parent_id`     the owning record's id (workspace of a time entry, account of an opportunity)
- `status`        the lifecycle/approval state a vendor filters on ("approved", "Closed Won"…)
- `created_at`, `updated_at`  the vendor's CreatedDate / LastModifiedDate / meta.lastModified.

All models live in the `sandbox` database alias (see router.py). A million rows are written with
`storage.record_bulk_insert` (bulk_create) or PostgreSQL COPY straight into
`sandbox_record`; set `updated_at`/`created_at` explicitly there, no signal or save() runs.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class SandboxRecord(models.Model):
    system = models.CharField(max_length=16)
    object_type = models.CharField(max_length=48)
    external_id = models.CharField(max_length=255, null=True, blank=True)
    parent_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=32, blank=True, default="")
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    deleted = models.BooleanField(default=False)

    class Meta:
        db_table = "sandbox_record"
        indexes = [
            # Keyset paging: WHERE system=… AND object_type=… AND id > … ORDER BY id.
            models.Index(fields=["system", "object_type", "id"], name="sbx_rec_type_id"),
            # updated_after / LastModifiedDate > … / meta.lastModified gt …
            models.Index(fields=["system", "object_type", "updated_at", "id"], name="sbx_rec_upd"),
            models.Index(
                fields=["system", "object_type", "parent_id", "id"], name="sbx_rec_parent"
            ),
            models.Index(fields=["system", "object_type", "status", "id"], name="sbx_rec_status"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "object_type", "external_id"],
                condition=Q(external_id__isnull=False),
                name="sbx_rec_external_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.system}:{self.object_type}:{self.pk}"


class SandboxEvent(models.Model):
    """One change to a record, in commit order: Kantata's change feed, Stripe's events.

    `id` is the cursor a client resumes from. Rows older than a dialect's retention are pruned by
    `storage.events_prune`, so a cursor can expire (the client must then resync).
    """

    system = models.CharField(max_length=16)
    object_type = models.CharField(max_length=48)
    record_id = models.BigIntegerField()
    action = models.CharField(max_length=32)  # created / updated / deleted / approved …
    occurred_at = models.DateTimeField()
    data = models.JSONField(default=dict)

    class Meta:
        db_table = "sandbox_event"
        indexes = [
            models.Index(fields=["system", "id"], name="sbx_evt_cursor"),
            models.Index(fields=["system", "occurred_at"], name="sbx_evt_time"),
        ]

    def __str__(self) -> str:
        return f"{self.system}:{self.action}:{self.object_type}:{self.record_id}"


class SandboxIdempotencyKey(models.Model):
    """A stored response to replay when a request repeats its Idempotency-Key (Stripe, NetSuite)."""

    system = models.CharField(max_length=16)
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response_headers = models.JSONField(default=dict)
    response_body = models.BinaryField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "sandbox_idempotency_key"
        constraints = [
            models.UniqueConstraint(fields=["system", "key"], name="sbx_idem_unique"),
        ]
        indexes = [models.Index(fields=["created_at"], name="sbx_idem_created")]

    def __str__(self) -> str:
        return f"{self.system}:{self.key}"


class SandboxWebhookSubscription(models.Model):
    """A client's request to be told about events (Kantata approval webhooks, Stripe endpoints)."""

    system = models.CharField(max_length=16)
    url = models.CharField(max_length=2000)
    event_types = models.JSONField(default=list)
    secret = models.CharField(max_length=128)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "sandbox_webhook_subscription"

    def __str__(self) -> str:
        return f"{self.system}:{self.url}"


class SandboxWebhookDelivery(models.Model):
    """One attempt-tracked delivery of an event to a subscription."""

    subscription = models.ForeignKey(SandboxWebhookSubscription, on_delete=models.CASCADE)
    event = models.ForeignKey(SandboxEvent, on_delete=models.CASCADE)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        db_table = "sandbox_webhook_delivery"
        indexes = [
            models.Index(fields=["delivered_at", "next_attempt_at"], name="sbx_hook_due"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk} of event {self.event_id}"
