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

import contextlib
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, IntegrityError, connections, transaction
from django.db.models import QuerySet, TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from sandbox.models import SandboxEvent, SandboxIdempotencyKey, SandboxRecord
from sandbox.router import SANDBOX_DB

BULK_BATCH_SIZE = 5000


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or timezone.now()


def record_queryset(*, system: str, object_type: str, include_deleted: bool = False) -> QuerySet:
    """All records of one object type of one system, not yet ordered."""
    qs = SandboxRecord.objects.using(SANDBOX_DB).filter(system=system, object_type=object_type)
    return qs if include_deleted else qs.filter(deleted=False)


# -- the hot path in plain SQL -------------------------------------------------------------------
# A vendor write looks up its record by external id and the records it refers to by id, then
# inserts or updates one row and appends its event. Through the ORM each of these statements
# costs ~0.5-0.8 ms of query compilation (and PostgreSQL plans the ORM's text several times
# slower): more than the emulated vendor's whole answer should. These few statements are
# written out once, in SQL both SQLite and PostgreSQL take, and their rows become model
# instances exactly as the ORM would make them.
_RECORD_FIELDS = tuple(SandboxRecord._meta.concrete_fields)
_RECORD_ATTNAMES = tuple(f.attname for f in _RECORD_FIELDS)
_RECORD_SELECT = "SELECT {} FROM sandbox_record".format(  # noqa: S608 - the model's columns
    ", ".join(f'"{f.column}"' for f in _RECORD_FIELDS)
)
_DATA = _RECORD_ATTNAMES.index("data")
_DATETIMES = (_RECORD_ATTNAMES.index("created_at"), _RECORD_ATTNAMES.index("updated_at"))
_DELETED = _RECORD_ATTNAMES.index("deleted")
_MAX_ID = 2**63 - 1  # bigint: a larger id names no row (and must not reach PostgreSQL)


def _datetime_from_db(value: Any) -> Any:
    """A stored timestamp as an aware UTC datetime (SQLite hands back text, naive UTC)."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if isinstance(value, dt.datetime) and timezone.is_naive(value):
        value = timezone.make_aware(value, dt.UTC)
    return value


def _record_from_row(row: Sequence[Any]) -> SandboxRecord:
    values = list(row)
    if isinstance(values[_DATA], str | bytes | bytearray):
        values[_DATA] = json.loads(values[_DATA])
    for index in _DATETIMES:
        values[index] = _datetime_from_db(values[index])
    values[_DELETED] = bool(values[_DELETED])
    return SandboxRecord.from_db(SANDBOX_DB, _RECORD_ATTNAMES, values)


def _records_where(where: str, params: Sequence[Any]) -> list[SandboxRecord]:
    with connections[SANDBOX_DB].cursor() as cursor:
        cursor.execute(f"{_RECORD_SELECT} WHERE {where}", list(params))
        rows = cursor.fetchall()
    return [_record_from_row(row) for row in rows]


def _db_datetime(value: dt.datetime) -> Any:
    return connections[SANDBOX_DB].ops.adapt_datetimefield_value(value)


def _db_json(value: Any) -> Any:
    return connections[SANDBOX_DB].ops.adapt_json_value(value, None)


def record_get(*, system: str, object_type: str, record_id: int) -> SandboxRecord | None:
    if not 0 < record_id <= _MAX_ID:
        return None
    rows = _records_where(
        '"system" = %s AND "object_type" = %s AND "id" = %s AND NOT "deleted"',
        [system, object_type, record_id],
    )
    return rows[0] if rows else None


def record_get_by_external_id(
    *, system: str, object_type: str, external_id: str
) -> SandboxRecord | None:
    # One row at most: (system, object_type, external_id) is unique.
    rows = _records_where(
        '"system" = %s AND "object_type" = %s AND "external_id" = %s AND NOT "deleted"',
        [system, object_type, external_id],
    )
    return rows[0] if rows else None


def records_get(*, system: str, ids: Iterable[int]) -> dict[int, SandboxRecord]:
    """Live records of any object type of one system, by id (one query)."""
    wanted = sorted({i for i in ids if 0 < i <= _MAX_ID})
    if not wanted:
        return {}
    placeholders = ", ".join(["%s"] * len(wanted))
    rows = _records_where(
        f'"system" = %s AND "id" IN ({placeholders}) AND NOT "deleted"', [system, *wanted]
    )
    return {row.pk: row for row in rows}


@dataclass(frozen=True)
class Related:
    """What `records_related` found: the records asked for by id or external id, the records
    those refer to, and the records of the extra condition."""

    records: dict[int, SandboxRecord]
    extra: list[SandboxRecord]


def records_related(
    *,
    system: str,
    ids: Iterable[int],
    object_type: str,
    external_id: str | None,
    reference_keys: Sequence[str],
    extra: tuple[str, str, Sequence[Any]] | None = None,
) -> Related:
    """Everything one write reads, in one query on PostgreSQL (the write's round trips, not its
    rows, are what a loaded server waits for): the live records of `system` with these ids, the
    `object_type` record with this `external_id`, the live records these refer to by any of
    `reference_keys` of their data (a reference is stored as the id's digits), and, with `extra`
    = (object type, SQL condition built with `data_text_sql`, its parameters), the live records
    of that type matching it, in id order. Other databases: the same in several queries.
    """
    wanted = sorted({i for i in ids if 0 < i <= _MAX_ID})
    if connections[SANDBOX_DB].vendor != "postgresql":
        return _records_related_queries(
            system=system,
            wanted=wanted,
            object_type=object_type,
            external_id=external_id,
            reference_keys=reference_keys,
            extra=extra,
        )
    extra_type, extra_where, extra_params = extra or ("", "FALSE", [])
    rows = _pg_rows(
        _related_sql(tuple(reference_keys), extra_where),
        [
            system,
            wanted,
            object_type,
            external_id,
            system,
            system,
            extra_type,
            *extra_params,
        ],
    )
    records = {}
    extras = []
    for branch, *row in rows:
        record = _record_from_row(row)
        if branch:
            extras.append(record)
        else:
            records[record.pk] = record
    extras.sort(key=lambda record: record.pk)
    return Related(records=records, extra=extras)


@functools.lru_cache(maxsize=16)
def _related_sql(reference_keys: tuple[str, ...], extra_where: str) -> str:
    """The statement of `records_related` on PostgreSQL (its shape depends only on constants)."""
    if not all(key.isidentifier() for key in reference_keys):
        raise ValueError(f"not data keys: {reference_keys!r}")
    keys = ", ".join(f"'{key}'" for key in reference_keys) or "NULL"
    columns = ", ".join(f'"{f.column}"' for f in _RECORD_FIELDS)
    return f"""
        WITH first AS (
            SELECT {columns} FROM sandbox_record
             WHERE "system" = %s AND NOT "deleted"
               AND ("id" = ANY(%s::bigint[]) OR ("object_type" = %s AND "external_id" = %s))
        )
        SELECT 0, * FROM first
        UNION ALL
        SELECT 0, {columns} FROM sandbox_record
         WHERE "system" = %s AND NOT "deleted"
           AND "id" = ANY(ARRAY(
                SELECT (f."data" ->> k)::bigint FROM first AS f, unnest(ARRAY[{keys}]) AS k
                 WHERE (f."data" ->> k) ~ '^[0-9]{{1,18}}$'))
           AND "id" <> ALL(ARRAY(SELECT "id" FROM first))
        UNION ALL
        SELECT 1, {columns} FROM sandbox_record
         WHERE "system" = %s AND "object_type" = %s AND NOT "deleted" AND ({extra_where})
    """  # noqa: S608 - the model's columns, constant keys and the caller's constant condition


def _pg_rows(sql: str, params: Sequence[Any]) -> list[tuple]:
    """Run one of the hot statements on PostgreSQL with server-side parameters, prepared once
    per connection: Django's client-side cursor would spend more CPU turning the parameters
    into SQL literals (and PostgreSQL parsing them) than the statement itself costs. The same
    connection and transaction as every other query; errors become Django's as usual."""
    import psycopg  # PostgreSQL only

    connection = connections[SANDBOX_DB]
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall() if cursor.description else []


def _records_related_queries(
    *,
    system: str,
    wanted: list[int],
    object_type: str,
    external_id: str | None,
    reference_keys: Sequence[str],
    extra: tuple[str, str, Sequence[Any]] | None,
) -> Related:
    records = records_get(system=system, ids=wanted)
    if external_id is not None:
        found = record_get_by_external_id(
            system=system, object_type=object_type, external_id=external_id
        )
        if found is not None:
            records[found.pk] = found
    referenced = {
        int(value)
        for record in records.values()
        for key in reference_keys
        if isinstance(value := record.data.get(key), str) and value.isdigit() and len(value) <= 18
    }
    records.update(records_get(system=system, ids=referenced - records.keys()))
    extras = []
    if extra is not None:
        extra_type, extra_where, extra_params = extra
        extras = _records_where(
            f'"system" = %s AND "object_type" = %s AND NOT "deleted" AND ({extra_where}) '
            'ORDER BY "id"',
            [system, extra_type, *extra_params],
        )
    return Related(records=records, extra=extras)


def data_text_sql(key: str) -> str:
    """SQL for the text of a top-level key of `data` (for `records_data`), on either database.

    `key` is a constant of the caller's, never user input.
    """
    if not key.isidentifier():
        raise ValueError(f"not a data key: {key!r}")
    if connections[SANDBOX_DB].vendor == "postgresql":
        return f"(\"data\" ->> '{key}')"
    return f"json_extract(\"data\", '$.{key}')"


_DATA_SELECT = (
    'SELECT "data" FROM sandbox_record WHERE "system" = %s AND "object_type" = %s AND NOT "deleted"'
)


def records_data(*, system: str, object_type: str, where: str, params: Sequence[Any]) -> list[dict]:
    """The `data` of the live records of one type matching a SQL condition (built with
    `data_text_sql`), in id order."""
    with connections[SANDBOX_DB].cursor() as cursor:
        # `where` is the caller's constant SQL; values are parameters.
        sql = f'{_DATA_SELECT} AND ({where}) ORDER BY "id"'
        cursor.execute(sql, [system, object_type, *params])
        rows = cursor.fetchall()
    return [json.loads(d) if isinstance(d, str | bytes | bytearray) else d for (d,) in rows]


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
    savepoint: bool = True,
) -> SandboxRecord:
    """Create one record and its `created` event.

    Raises IntegrityError on a duplicate external id. Inside a caller's transaction that
    abandons itself on that error anyway, `savepoint=False` spares the savepoint's two
    statements.
    """
    moment = _now(now)
    connection = connections[SANDBOX_DB]
    row = [
        system,
        object_type,
        external_id,
        parent_id,
        status,
        _db_json(data),
        _db_datetime(moment),
        _db_datetime(moment),
        False,
    ]
    # On PostgreSQL the row and its event are one statement, atomic by itself: no transaction
    # of its own is needed (three round trips fewer per write), unless a savepoint must let a
    # caller's transaction survive a duplicate.
    one_statement = event and connection.vendor == "postgresql"
    atomic = (
        contextlib.nullcontext()
        if one_statement and not (savepoint and connection.in_atomic_block)
        else transaction.atomic(using=SANDBOX_DB, savepoint=savepoint)
    )
    with atomic:
        if one_statement:
            ((record_id,),) = _pg_rows(
                _INSERT_WITH_EVENT, [*row, "created", _db_datetime(moment), _db_json({})]
            )
        else:
            with connection.cursor() as cursor:
                cursor.execute(_INSERT, row)
                (record_id,) = cursor.fetchone()
        record = SandboxRecord.from_db(
            SANDBOX_DB,
            _RECORD_ATTNAMES,
            [
                record_id,
                system,
                object_type,
                external_id,
                parent_id,
                status,
                data,
                moment,
                moment,
                False,
            ],
        )
        if event and not one_statement:
            event_append(record=record, action="created", now=moment)
    return record


_INSERT = (
    'INSERT INTO sandbox_record ("system", "object_type", "external_id", "parent_id", "status", '
    '"data", "created_at", "updated_at", "deleted") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) '
    'RETURNING "id"'
)
_INSERT_WITH_EVENT = (
    'WITH created AS (INSERT INTO sandbox_record ("system", "object_type", "external_id", '
    '"parent_id", "status", "data", "created_at", "updated_at", "deleted") '
    'VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING "id", "system", "object_type") '
    'INSERT INTO sandbox_event ("system", "object_type", "record_id", "action", "occurred_at", '
    '"data") SELECT "system", "object_type", "id", %s, %s, %s FROM created RETURNING "record_id"'
)


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

    `changes` is recorded on the appended event. Within a caller's transaction no savepoint
    is made: nothing here is expected to fail and be carried on from.
    """
    moment = _now(now)
    connection = connections[SANDBOX_DB]
    record.data = {**record.data, **changes}
    record.updated_at = moment
    values = {"data": _db_json(record.data), "updated_at": _db_datetime(moment)}
    if parent_id is not None:
        record.parent_id = values["parent_id"] = parent_id
    if status is not None:
        record.status = values["status"] = status
    update = 'UPDATE sandbox_record SET {} WHERE "id" = %s'.format(  # noqa: S608 - columns
        ", ".join(f'"{name}" = %s' for name in values)
    )
    params = [*values.values(), record.pk]
    # On PostgreSQL the update and its event are one statement, atomic by itself; only the
    # update and its event as two statements (SQLite) need a transaction.
    one_statement = event and connection.vendor == "postgresql"
    atomic = (
        transaction.atomic(using=SANDBOX_DB, savepoint=False)
        if event and not one_statement
        else contextlib.nullcontext()
    )
    with atomic:
        if one_statement:
            changed = len(
                _pg_rows(
                    f'WITH updated AS ({update} RETURNING "id", "system", "object_type") '
                    + _EVENT_OF_UPDATED,
                    [*params, action, _db_datetime(moment), _db_json({"changes": changes})],
                )
            )
        else:
            with connection.cursor() as cursor:
                cursor.execute(update, params)
                changed = cursor.rowcount
        if changed != 1:  # as Model.save(update_fields=…) refuses a vanished row
            raise DatabaseError(f"{record} was not updated: it no longer exists")
        if event and not one_statement:
            event_append(record=record, action=action, now=moment, data={"changes": changes})
    return record


_EVENT_OF_UPDATED = (
    'INSERT INTO sandbox_event ("system", "object_type", "record_id", "action", "occurred_at", '
    '"data") SELECT "system", "object_type", "id", %s, %s, %s FROM updated RETURNING "record_id"'
)


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
    moment, data = _now(now), data or {}
    with connections[SANDBOX_DB].cursor() as cursor:
        cursor.execute(
            'INSERT INTO sandbox_event ("system", "object_type", "record_id", "action", '
            '"occurred_at", "data") VALUES (%s, %s, %s, %s, %s, %s) RETURNING "id"',
            [
                record.system,
                record.object_type,
                record.pk,
                action,
                _db_datetime(moment),
                _db_json(data),
            ],
        )
        (event_id,) = cursor.fetchone()
    return SandboxEvent.from_db(
        SANDBOX_DB,
        _EVENT_ATTNAMES,
        [
            event_id,
            record.system,
            record.object_type,
            record.pk,
            action,
            moment,
            data,
        ],
    )


_EVENT_ATTNAMES = tuple(f.attname for f in SandboxEvent._meta.concrete_fields)


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
