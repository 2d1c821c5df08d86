"""The protocol every inbox flow follows, written once: claim → read → plan and write → finish.

A flow (PSA time entries, approval events, ERP time bills, each master-data entity) is a
`Flow`: its reader (payload → record, raising PayloadError) and its planner/writer, which turns
the batch's records into canonical writes and exception items through the `Batch` it is given.
`batch_process` does the rest, in ONE transaction:

1. claim the batch's pending items (`items_claim`): an item another worker holds or has
   already finished is skipped, never processed twice;
2. read each payload with the flow's reader; one it cannot read is parked, once, as a
   MALFORMED_PAYLOAD item for integration ops (`malformed`). When the flow names its records
   (`Flow.identity`) the newest payload of a record wins and older ones are superseded;
3. hand the records to the flow's `write`;
4. finish: raise the batch's exception items, close the open ones of the records that passed,
   mark the items parked or processed.

A database error rolls the batch back and leaves every item pending. Nothing is processed twice:
an item no longer pending is not claimed again.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connections, router, transaction
from django.utils import timezone

from sync.audit import acting_as
from sync.bulk import gc_paused
from sync.connectors.http import json_decode
from sync.errors import PayloadError
from sync.mappings.ownership import OwnershipBook
from sync.mappings.selectors import ownership_book_load
from sync.pipeline.exception_items import Failure, exception_items_close_for, exception_items_raise
from sync.pipeline.models import InboxItem, SyncRun
from sync.pipeline.models.exception_items import Queue, Stage

SYSTEM_LABELS = {"erp": "ERP", "hr": "HR", "psa": "PSA", "crm": "CRM", "billing": "billing"}


@dataclass
class ProcessCounts:
    """What one batch did; the cycle sums `created` … `failed` over its batches."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0  # changes refused by field ownership (each also an exception item)
    failed: int = 0  # exception items raised, refusals aside
    deliveries: int = 0
    linked: int = 0  # of `created`: already in the target, recorded as posted, not posted again
    claimed: int = 0  # inbox items this call claimed
    stored: int = 0  # records a flow stored in the inbox for another flow (approval events)
    delivery_ids: list[int] = field(default_factory=list)  # pending postings to send at once
    failures: list[Failure] = field(default_factory=list)


class Item(NamedTuple):
    """The inbox columns a flow reads (no model instance per item)."""

    id: int
    external_id: str
    correlation_id: str
    connection_id: int | None
    # As it was before this claim (set once an item is replayed), for a flow that asks for it
    # (`Flow.previous_claim`); None otherwise.
    processed_at: dt.datetime | None
    payload: Any


Reader = Callable[[Any], Any]


@dataclass(frozen=True)
class Flow:
    """What one flow supplies to the protocol.

    `system`/`entity`: the inbox items it processes (its callers pick them by these).
    `record`: the noun of its record keys (`<system>:<record>:<id>`). `read(payload)`: the
    record, or PayloadError naming what is wrong. `write(records, batch)`: plans and writes the
    batch's (item, record) pairs, reporting exception items with `batch.fail` and the records
    that passed in `batch.passed`. `what` and `fix` word the MALFORMED_PAYLOAD item.
    `close_stages`: the stages whose open items a record that passes closes.
    """

    system: str
    entity: str
    record: str
    read: Reader
    write: Callable[[list[tuple[Item, Any]], Batch], None]
    what: str
    fix: str = ""
    identity: Callable[[Any], Hashable] | None = operator.attrgetter("external_id")
    close_stages: tuple[str, ...] = (Stage.PARSE, Stage.VALIDATE)
    close_reason: str = "Processed on replay."
    # Whether `write` reads `Item.processed_at` (the claim then joins the items' rows as they
    # were: ~1 µs more an item on PostgreSQL).
    previous_claim: bool = False

    @property
    def label(self) -> str:
        return SYSTEM_LABELS.get(self.system, self.system)


@dataclass
class Batch:
    """One batch in flight: what the flow's writer reports into."""

    flow: Flow
    run: SyncRun
    now: dt.datetime
    counts: ProcessCounts = field(default_factory=ProcessCounts)
    parked: set[int] = field(default_factory=set)
    passed: list[str] = field(default_factory=list)  # record keys
    _ownership: OwnershipBook | None = None

    @property
    def system(self) -> str:
        return self.flow.system

    @property
    def entity(self) -> str:
        return self.flow.entity

    @property
    def today(self) -> dt.date:
        return timezone.localdate(self.now)

    @property
    def ownership(self) -> OwnershipBook:
        if self._ownership is None:
            # Ownership is judged on the day the change is processed.
            self._ownership = ownership_book_load(on=self.today)
        return self._ownership

    def record_key(self, external_id: str) -> str:
        return f"{self.flow.system}:{self.flow.record}:{external_id}"

    def fail(
        self,
        item: Item,
        external_id: str,
        *,
        code: str,
        queue: str,
        message: str,
        suggested_fix: str,
        stage: str = Stage.VALIDATE,
        cause: str | None = None,
        category: str = "business",
        detail: dict[str, Any] | None = None,
        money_at_risk: Decimal | None = None,
        currency: str = "",
        legal_entity: str = "",
        park: bool = True,
    ) -> None:
        """Report the record as an exception item; `park` keeps its inbox item for a replay."""
        self.counts.failures.append(
            Failure(
                record_key=self.record_key(external_id),
                stage=stage,
                queue=queue,
                code=code,
                category=category,
                message=message[:2000],
                suggested_fix=suggested_fix,
                cause=code if cause is None else cause,
                detail=detail or {},
                payload=item.payload if isinstance(item.payload, dict) else {},
                money_at_risk=money_at_risk,
                currency=currency,
                legal_entity=legal_entity or "",
                correlation_id=item.correlation_id,
                inbox_item_id=item.id,
            )
        )
        if park:
            self.parked.add(item.id)

    def refuse_field(
        self,
        item: Item,
        external_id: str,
        *,
        refused: Any,
        entity: str,
        queue: str,
        legal_entity: str = "",
    ) -> None:
        """Report a change field ownership refused (`refused`: an ownership_merge refusal) as a
        FIELD_OWNED_ELSEWHERE item; the record is not parked (the rest of it applies)."""
        self.counts.refused += 1
        owner, source = (
            SYSTEM_LABELS.get(s, s.upper()) for s in (refused.owner_system, refused.source_system)
        )
        self.fail(
            item,
            external_id,
            code="FIELD_OWNED_ELSEWHERE",
            queue=queue,
            stage=Stage.OWN,
            park=False,
            cause=f"{entity}.{refused.field}",
            legal_entity=legal_entity,
            message=f"The {source} changed {entity} {refused.field} from {refused.current} to "
            f"{refused.attempted}, but the {owner} owns that field: the change was refused.",
            suggested_fix=f"Make the change in the {owner}, or correct the ownership rule if it "
            "is wrong.",
            detail={
                "field": refused.field,
                "attempted": str(refused.attempted),
                "current": str(refused.current),
                "owner": refused.owner_system,
                "source": refused.source_system,
            },
        )


def malformed(batch: Batch, item: Item, reason: str) -> None:
    """Park an item whose payload the flow's reader refused (MALFORMED_PAYLOAD)."""
    flow = batch.flow
    batch.fail(
        item,
        item.external_id or f"inbox-{item.id}",
        code="MALFORMED_PAYLOAD",
        queue=Queue.INTEGRATION_OPS,
        stage=Stage.PARSE,
        category="technical",
        message=f"The {flow.label} sent {flow.what} Ledgerbridge cannot read: {reason}",
        suggested_fix=flow.fix
        or f"Check the record in the {flow.label} (or a schema change on its side), then replay.",
    )


def batch_process(
    *, flow: Flow, inbox_ids: Sequence[int], run: SyncRun, now: dt.datetime | None = None
) -> ProcessCounts:
    """Take the pending items of `inbox_ids` through `flow` as one batch (see the module
    docstring). History is attributed to the run.

    Raises nothing for bad records: they become exception items and their items are parked.
    Whatever the flow's writer raises rolls the batch back, every item left pending.
    """
    batch = Batch(flow=flow, run=run, now=now or timezone.now())
    # The cyclic collector is paused for the batch: decision 29 (sync.bulk.gc_paused).
    with gc_paused(), transaction.atomic(), acting_as(run.actor):
        items, marked = items_claim(
            inbox_ids=inbox_ids, now=batch.now, previous=flow.previous_claim
        )
        if not items:
            return batch.counts
        batch.counts.claimed = len(items)
        records = _records_read(batch, items)
        if records:
            flow.write(records, batch)
        _finish(batch, items, marked=marked)
    return batch.counts


def items_claim(
    *, inbox_ids: Sequence[int], now: dt.datetime, previous: bool = False
) -> tuple[list[Item], bool]:
    """Lock the pending items among `inbox_ids` (the caller chose them by system and entity),
    oldest first; one that another worker claims meanwhile is skipped. Returns (items, whether
    they are already marked processed).

    On PostgreSQL one conditional `UPDATE … RETURNING` marks the items processed, locks them and
    returns their payloads as text (with `previous`, a CTE adds each item's `processed_at` from
    before the claim), read by json_decode (every number exact); an item a
    concurrent worker claimed is waited for and then skipped (it is no longer pending), and a
    rollback leaves them all pending. No `FOR UPDATE SKIP LOCKED` here: locking the rows before
    updating them costs every item a second tuple write (decision 39). Elsewhere: SELECT … FOR
    UPDATE (SKIP LOCKED where the database has it) now, the status update when the batch ends.
    """
    database = connections[router.db_for_write(InboxItem)]
    if database.vendor == "postgresql":
        table = InboxItem._meta.db_table
        column = {f.name: f.column for f in InboxItem._meta.concrete_fields}
        status, processed_at = column["status"], column["processed_at"]
        returned = (
            f"item.id, item.{column['external_id']}, item.{column['correlation_id']}, "
            f"item.{column['connection']}, {{before}}, item.{column['payload']}::text"
        )
        # Fixed names from the model's own metadata, every value a parameter.
        if previous:
            statement = (
                f"WITH pending AS (SELECT id, {processed_at} AS before FROM {table} "  # noqa: S608
                f"WHERE id = ANY(%(ids)s::bigint[]) AND {status} = %(pending)s) "
                f"UPDATE {table} AS item SET {status} = %(processed)s, {processed_at} = %(now)s "
                f"FROM pending WHERE item.id = pending.id AND item.{status} = %(pending)s "
                f"RETURNING {returned.format(before='pending.before')}"
            )
        else:
            statement = (
                f"UPDATE {table} AS item SET {status} = %(processed)s, "  # noqa: S608
                f"{processed_at} = %(now)s "
                f"WHERE item.id = ANY(%(ids)s::bigint[]) AND item.{status} = %(pending)s "
                f"RETURNING {returned.format(before='NULL')}"
            )
        with database.cursor() as cursor:
            cursor.execute(
                statement,
                {
                    "ids": list(inbox_ids),
                    "pending": InboxItem.Status.PENDING,
                    "processed": InboxItem.Status.PROCESSED,
                    "now": now,
                },
            )
            rows = sorted(cursor.fetchall())
        return [Item(*row[:5], json_decode(row[5])) for row in rows], True
    rows = (
        InboxItem.objects.select_for_update(skip_locked=True)
        .filter(id__any=list(inbox_ids), status=InboxItem.Status.PENDING)
        .order_by("id")
        .values_list(*Item._fields[:3], "connection_id", "processed_at", "payload")
    )
    return [Item(*row) for row in rows], False


def _records_read(batch: Batch, items: list[Item]) -> list[tuple[Item, Any]]:
    """(item, record) of every item the flow's reader can read; the rest are parked."""
    read, identity = batch.flow.read, batch.flow.identity
    records: list[tuple[Item, Any]] = []
    latest: dict[Hashable, tuple[Item, Any]] = {}
    for item in items:
        try:
            record = read(item.payload)
        except PayloadError as exc:
            malformed(batch, item, str(exc))
            continue
        if identity is None:
            records.append((item, record))
        else:
            latest[identity(record)] = (item, record)
    return records if identity is None else list(latest.values())


def _finish(batch: Batch, items: list[Item], *, marked: bool) -> None:
    """Raise the batch's exception items, close those of records that passed, mark the items."""
    counts, flow = batch.counts, batch.flow
    exception_items_raise(failures=counts.failures, run_id=batch.run.id, now=batch.now)
    if batch.passed:
        for stage in flow.close_stages:
            # A record may pass while reporting something at this stage (a refused status
            # move): that item stays open.
            failing = {f.record_key for f in counts.failures if f.stage == stage}
            keys = [k for k in batch.passed if k not in failing] if failing else batch.passed
            if keys:
                exception_items_close_for(record_keys=keys, stage=stage, reason=flow.close_reason)
    if batch.parked:
        InboxItem.objects.filter(id__any=sorted(batch.parked)).update(
            status=InboxItem.Status.PARKED, processed_at=batch.now
        )
    if not marked:
        InboxItem.objects.filter(id__any=[i.id for i in items if i.id not in batch.parked]).update(
            status=InboxItem.Status.PROCESSED, processed_at=batch.now
        )
    counts.failed += sum(1 for f in counts.failures if f.stage != Stage.OWN)
