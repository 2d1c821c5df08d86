"""Storage API of the sandbox: every dialect and the generator read and write records through it.

Writes (services):
    record_create, record_update, record_upsert_by_external_id, record_bulk_insert,
    event_append, events_prune, idempotency_store
Reads (selectors):
    record_get, record_get_by_external_id, record_queryset, record_page_after, events_since,
    idempotency_lookup
Expressions:
    data_text(key) - a key of `data` as text, for filters and ordering on JSON attributes

All run on the `sandbox` alias. Timestamps are timezone-aware UTC; `now` can be passed in so that
the generator and the tests control time. A write that changes a record also appends a change
event when `event=True` (the default), in the same transaction, so that a change feed never
misses a committed change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from sync.sandbox.models import SandboxEvent, SandboxIdempotencyKey, SandboxRecord
from sync.sandbox.router import SANDBOX_DB

BULK_BATCH_SIZE = 5000


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


def record_queryset(*, system: str, object_type: str, include_deleted: bool = False) -> QuerySet:
    """All records of one object type of one system, not yet ordered."""
    qs = SandboxRecord.objects.using(SANDBOX_DB).filter(system=system, object_type=object_type)
    return qs if include_deleted else qs.filter(deleted=False)


def record_get(*, system: str, object_type: str, record_id: int) -> SandboxRecord | None:
    return record_queryset(system=system, object_type=object_type).filter(pk=record_id).first()


def record_get_by_external_id(
    *, system: str, object_type: str, external_id: str
) -> SandboxRecord | None:
    return (
        record_queryset(system=system, object_type=object_type)
        .filter(external_id=external_id)
        .first()
    )


def record_page_after(
    *, queryset: QuerySet, after_id: int | None, limit: int
) -> list[SandboxRecord]:
    """Keyset page: up to `limit` records with id > after_id, in id order (uses the id index)."""
    if after_id is not None:
        queryset = queryset.filter(pk__gt=after_id)
    return list(queryset.order_by("pk")[:limit])


def record_create(
    *,
    system: str,
    object_type: str,
    data: dict,
    external_id: str | None = None,
    parent_id: int | None = None,
    status: str = "",
    now: dt.datetime | None = None,
    event: bool = True,
) -> SandboxRecord:
    """Create one record and its `created` event.

    Raises IntegrityError on a duplicate external id.
    """
    moment = _now(now)
    with transaction.atomic(using=SANDBOX_DB):
        record = SandboxRecord.objects.using(SANDBOX_DB).create(
            system=system,
            object_type=object_type,
            external_id=external_id,
            parent_id=parent_id,
            status=status,
            data=data,
            created_at=moment,
            updated_at=moment,
        )
        if event:
            event_append(record=record, action="created", now=moment)
    return record


def record_update(
    *,
    record: SandboxRecord,
    changes: dict,
    parent_id: int | None = None,
    status: str | None = None,
    action: str = "updated",
    now: dt.datetime | None = None,
    event: bool = True,
) -> SandboxRecord:
    """Merge `changes` into the record's data and bump updated_at.

    `changes` is recorded on the appended event.
    """
    moment = _now(now)
    with transaction.atomic(using=SANDBOX_DB):
        record.data = {**record.data, **changes}
        record.updated_at = moment
        fields = ["data", "updated_at"]
        if parent_id is not None:
            record.parent_id = parent_id
            fields.append("parent_id")
        if status is not None:
            record.status = status
            fields.append("status")
        record.save(using=SANDBOX_DB, update_fields=fields)
        if event:
            event_append(record=record, action=action, now=moment, data={"changes": changes})
    return record


@dataclass(frozen=True)
class UpsertResult:
    record: SandboxRecord
    created: bool


def record_upsert_by_external_id(
    *,
    system: str,
    object_type: str,
    external_id: str,
    data: dict,
    parent_id: int | None = None,
    status: str | None = None,
    now: dt.datetime | None = None,
) -> UpsertResult:
    """Create the record with this external id, or merge `data` into it. Idempotent.

    Two concurrent first upserts race on the unique constraint; the loser retries as an update.
    """
    for _attempt in range(2):
        record = (
            record_queryset(system=system, object_type=object_type, include_deleted=True)
            .filter(external_id=external_id)
            .first()
        )
        if record is not None:
            if record.deleted:
                record.deleted = False
                record.save(using=SANDBOX_DB, update_fields=["deleted"])
            record_update(record=record, changes=data, parent_id=parent_id, status=status, now=now)
            return UpsertResult(record=record, created=False)
        try:
            with transaction.atomic(using=SANDBOX_DB):
                record = record_create(
                    system=system,
                    object_type=object_type,
                    data=data,
                    external_id=external_id,
                    parent_id=parent_id,
                    status=status or "",
                    now=now,
                )
            return UpsertResult(record=record, created=True)
        except IntegrityError:
            continue
    raise IntegrityError(f"upsert of {system}:{object_type}:{external_id} lost twice")


def record_bulk_insert(
    *, records: Iterable[SandboxRecord], batch_size: int = BULK_BATCH_SIZE
) -> int:
    """Insert unsaved SandboxRecord instances in batches, without events. Returns the row count.

    Callers set system, object_type, data, created_at and updated_at on each instance. Ids are
    assigned by the database; on PostgreSQL bulk_create returns them, on SQLite it does too.
    """
    count = 0
    batch: list[SandboxRecord] = []
    manager = SandboxRecord.objects.using(SANDBOX_DB)
    for record in records:
        batch.append(record)
        if len(batch) >= batch_size:
            manager.bulk_create(batch, batch_size=batch_size)
            count += len(batch)
            batch = []
    if batch:
        manager.bulk_create(batch, batch_size=batch_size)
        count += len(batch)
    return count


def event_append(
    *,
    record: SandboxRecord,
    action: str,
    now: dt.datetime | None = None,
    data: dict | None = None,
) -> SandboxEvent:
    return SandboxEvent.objects.using(SANDBOX_DB).create(
        system=record.system,
        object_type=record.object_type,
        record_id=record.pk,
        action=action,
        occurred_at=_now(now),
        data=data or {},
    )


def events_since(
    *,
    system: str,
    after_id: int | None,
    limit: int,
    object_types: Sequence[str] | None = None,
) -> list[SandboxEvent]:
    """Events with id > after_id in commit order (the cursor is the last id seen)."""
    qs = SandboxEvent.objects.using(SANDBOX_DB).filter(system=system)
    if after_id is not None:
        qs = qs.filter(pk__gt=after_id)
    if object_types:
        qs = qs.filter(object_type__in=list(object_types))
    return list(qs.order_by("pk")[:limit])


def events_oldest_id(*, system: str) -> int | None:
    return (
        SandboxEvent.objects.using(SANDBOX_DB)
        .filter(system=system)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )


def event_exists(*, system: str, event_id: int) -> bool:
    return SandboxEvent.objects.using(SANDBOX_DB).filter(system=system, pk=event_id).exists()


def events_prune(*, system: str, older_than: dt.datetime) -> int:
    """Delete the events a dialect no longer keeps (e.g. Kantata's 7 days). Returns the count."""
    deleted, _ = (
        SandboxEvent.objects.using(SANDBOX_DB)
        .filter(system=system, occurred_at__lt=older_than)
        .delete()
    )
    return deleted


def request_fingerprint(*, method: str, path: str, body: bytes) -> str:
    """What must match for an idempotent replay: same method, path and body."""
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def idempotency_lookup(*, system: str, key: str) -> SandboxIdempotencyKey | None:
    return SandboxIdempotencyKey.objects.using(SANDBOX_DB).filter(system=system, key=key).first()


def idempotency_store(
    *,
    system: str,
    key: str,
    fingerprint: str,
    status_code: int,
    headers: dict,
    body: bytes,
    now: dt.datetime | None = None,
) -> SandboxIdempotencyKey:
    """Remember a response for `key`. If another request stored it first, return that one.

    Call inside the same transaction as the write it describes, so that a replay can never see
    a key without its write or a write without its key.
    """
    try:
        with transaction.atomic(using=SANDBOX_DB):
            return SandboxIdempotencyKey.objects.using(SANDBOX_DB).create(
                system=system,
                key=key,
                request_fingerprint=fingerprint,
                status_code=status_code,
                response_headers=headers,
                response_body=body,
                created_at=_now(now),
            )
    except IntegrityError:
        existing = idempotency_lookup(system=system, key=key)
        if existing is None:  # pragma: no cover - deleted between the insert and the read
            raise
        return existing


def data_text(key: str, base: Any = "data") -> Cast:
    """The text of one key of `data` (or of a nested KeyTransform) as a plain text expression.

    KeyTextTransform alone keeps JSONField lookups (on SQLite, `exact` then wraps the
    right-hand side in JSON() and fails on plain strings); the cast makes every text lookup
    (exact, iexact, startswith, gt on ISO dates) behave as on a text column.
    """
    return Cast(KeyTextTransform(key, base), output_field=TextField())
