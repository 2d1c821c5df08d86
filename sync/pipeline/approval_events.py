"""PSA approval events (signed Kantata webhooks) → the approved record → its ERP posting, at once.

A webhook stores each event in the inbox as (psa, "approval_events") before anything processes
it (sync/webhooks.py). `approval_events_process` takes a batch of those events through the
processing protocol (sync.pipeline.processing), in ONE transaction:

1. claims the events still pending, skipping any another worker holds, so concurrent callers
   take disjoint events and no record is read twice;
2. reads each strictly (sync.integrations.kantata.events); an event it cannot read is parked
   with a MALFORMED_PAYLOAD exception item for integration ops (nothing is dropped);
3. gets the approved records: from the event when it carries one (`subject`), else from the PSA
   through the event's connection and its connector (`only=<ids>&approved=true`, 200 ids a
   request). A record the PSA no longer shows as approved (approval withdrawn, record deleted)
   has nothing to post: its event is processed and nothing is stored;
4. stores the approved records with `inbox_store` as (psa, "time_entries") or (psa,
   "expenses") items, each carrying the correlation id of the event that approved it (a
   payload equal to the latest one stored, e.g. by a pull, is skipped), marks the events
   processed, and runs `time_entries_process` on exactly the time-entry items it stored, so the
   canonical entries and their outbox deliveries commit with the events.

Anything that raises rolls the whole batch back and its events stay pending for the cycle
(`sync.pipeline.cycle.processing_registry` runs this processor after master data and before
time entries). Without an enabled ERP connection the time-entry items are stored and wait,
pending, for a cycle that has one.

Expense approvals are stored the same way as (psa, "expenses") items and wait there pending for
the next cycle's expense posting (`sync/pipeline/expense_posting/`), not posted at once.

`approval_event_post_now` is what the webhook's Celery task runs (sync/tasks_events.py): the
event, with any others waiting beside it, processed as above in a sync run of its own, then the
ERP postings they produced sent at once instead of waiting for the delivery sweep.

Idempotent: an event no longer pending is left alone, a record's equal payload is stored once,
and time posting is idempotent itself (one ERP posting per entry version).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sync.connectors.base import TransportError, correlation_scope
from sync.errors import DomainError
from sync.integrations.kantata.events import ApprovalEvent, approval_event_read
from sync.integrations.registry import source_connector_for
from sync.logging import run_scope
from sync.models import TimeEntry
from sync.pipeline.connection_services import erp_connection_get
from sync.pipeline.delivery import deliveries_send
from sync.pipeline.inbox import inbox_store
from sync.pipeline.models import Connection, Delivery, InboxItem, SyncRun
from sync.pipeline.models.connections import Dialect, System
from sync.pipeline.models.exception_items import Stage
from sync.pipeline.processing import Batch, Flow, Item, ProcessCounts, batch_process
from sync.pipeline.time_posting.flow import time_entries_process

logger = logging.getLogger(__name__)

ENTITY = "approval_events"
TIME_ENTRIES = "time_entries"
FETCH_CHUNK = 200  # Kantata's per_page maximum: one request reads up to 200 records by id
# Events one webhook task takes (its own and those waiting beside it): small enough that the
# batch ends well within the task's time limit, large enough to absorb a burst.
EVENT_BATCH = 100
# What the webhook task reports of a batch (besides the run's id and status).
_REPORTED = ("created", "updated", "unchanged", "refused", "failed", "deliveries")

ConnectorFor = Callable[[Connection], Any]


def _psa_connection_fallback() -> Connection:
    connection = (
        Connection.objects.filter(enabled=True, system=System.PSA, dialect=Dialect.KANTATA)
        .order_by("id")
        .first()
    )
    if connection is None:
        raise DomainError(
            "An approval event names no connection and no Kantata PSA connection "
            "is enabled to read the approved record from."
        )
    return connection


def approved_records_fetch(
    *,
    wanted: dict[tuple[int | None, str], set[str]],
    connector_for: ConnectorFor | None = None,
) -> dict[tuple[int | None, str, str], dict[str, Any]]:
    """The approved PSA records for {(connection id, entity): {record id, …}}, keyed
    (connection id, entity, record id); a record the PSA does not show as approved is absent.

    One request per 200 ids per (connection, entity). Raises TransportError (classified by the
    connector) and DomainError (no connection to read from).
    """
    connector_for = connector_for or source_connector_for
    connections = Connection.objects.in_bulk([c for c, _ in wanted if c is not None])
    found: dict[tuple[int | None, str, str], dict[str, Any]] = {}
    for (connection_id, entity), ids in wanted.items():
        connection = connections.get(connection_id) or _psa_connection_fallback()
        connector = connector_for(connection)
        try:
            ordered = sorted(ids, key=int)
            for start in range(0, len(ordered), FETCH_CHUNK):
                chunk = ",".join(ordered[start : start + FETCH_CHUNK])
                for page in connector.pull(entity=entity, filters={"only": chunk}):
                    for record in page.records:
                        found[(connection_id, entity, str(record.get("id")))] = record
        finally:
            connector.close()
    return found


def approval_events_process(
    *,
    inbox_ids: Sequence[int],
    run: SyncRun,
    erp: Connection | None,
    now: dt.datetime | None = None,
    connector_for: ConnectorFor | None = None,
) -> ProcessCounts:
    """Process the given pending approval-event inbox items (see the module docstring).

    The events are claimed (skipping any another worker holds) for the whole batch, PSA read
    included, so concurrent callers take disjoint events and nobody reads the same record
    twice; the read is bounded by the connection's timeout.

    Raises TransportError (the PSA could not be read) and DomainError; then nothing is written
    and every event stays pending. Malformed events never raise: they are parked.
    """
    flow = Flow(
        system=System.PSA.value,
        entity=ENTITY,
        record="approval_event",
        read=approval_event_read,
        write=lambda records, batch: _events_write(
            records, batch=batch, erp=erp, connector_for=connector_for
        ),
        what="an approval event",
        fix="Check the PSA's webhook sender (or a change to its event format), then replay the "
        "event; the approved record also arrives with the next pull.",
        identity=None,
        close_stages=(Stage.PARSE,),
        close_reason="Read on replay.",
        previous_claim=True,  # _replayed reads processed_at
    )
    return batch_process(flow=flow, inbox_ids=inbox_ids, run=run, now=now)


def _events_write(
    records: list[tuple[Item, ApprovalEvent]],
    *,
    batch: Batch,
    erp: Connection | None,
    connector_for: ConnectorFor | None,
) -> None:
    """Store the records the events approve and post their time entries (steps 3 and 4)."""
    counts, run, now = batch.counts, batch.run, batch.now
    connections = Connection.objects.in_bulk({i.connection_id for i, _ in records} - {None})
    wanted: dict[tuple[int | None, str], set[str]] = defaultdict(set)
    for item, event in records:
        if event.subject is None:
            wanted[(item.connection_id, event.entity)].add(event.subject_id)
    fetched = approved_records_fetch(wanted=wanted, connector_for=connector_for) if wanted else {}
    # The approved records to store, by (entity, connection): {record id: (record, event item)}.
    approved: dict[tuple[str, int | None], dict[str, tuple[dict, Item]]] = defaultdict(dict)
    for item, event in records:
        record = event.subject or fetched.get((item.connection_id, event.entity, event.subject_id))
        if record is None:
            counts.unchanged += 1  # no longer approved, or gone: nothing to post
            continue
        approved[(event.entity, item.connection_id)][event.subject_id] = (record, item)
    new_time_items: list[int] = []
    posted_entries: list[str] = []
    for (entity, connection_id), by_record in approved.items():
        stored = inbox_store(
            system=System.PSA,
            entity=entity,
            connection=connections.get(connection_id),
            run_id=run.id,
            now=now,
            records=[(record_id, record) for record_id, (record, _) in by_record.items()],
        )
        # Each stored record carries the correlation id of the event that approved it.
        for new in stored.new:
            new.correlation_id = by_record[new.external_id][1].correlation_id
        InboxItem.objects.bulk_update(stored.new, ["correlation_id"], batch_size=1000)
        counts.stored += len(stored.new)
        counts.unchanged += len(by_record) - len(stored.new)  # equal payload stored already
        if entity == TIME_ENTRIES:
            new_time_items.extend(new.id for new in stored.new)
            posted_entries.extend(new.external_id for new in stored.new)
    if _replayed([item for item, _ in records]):
        batch.passed.extend(batch.record_key(item.external_id) for item, _ in records)
    if new_time_items and erp is None:
        logger.warning(
            "no enabled ERP connection: %d approved time entries wait in the inbox",
            len(new_time_items),
        )
    elif new_time_items:
        posted = time_entries_process(inbox_ids=new_time_items, run=run, erp=erp, now=now)
        for name in _REPORTED:
            setattr(counts, name, getattr(counts, name) + getattr(posted, name))
        counts.delivery_ids = _pending_delivery_ids(psa_ids=posted_entries, erp=erp)


def _replayed(items: list[Item]) -> bool:
    """Whether any of these events was parked before and is replayed (a replay resets the
    status, not `processed_at`): only then can a parse item be open for it. Spares the hot path,
    where every event is new, the look-up."""
    return any(item.processed_at is not None for item in items)


def _pending_delivery_ids(*, psa_ids: list[str], erp: Connection) -> list[int]:
    """The pending ERP postings of these PSA time entries."""
    entry_type = ContentType.objects.get_for_model(TimeEntry)
    entry_pks = [
        str(pk) for pk in TimeEntry.objects.filter(psa_id__in=psa_ids).values_list("pk", flat=True)
    ]
    if not entry_pks:
        return []
    return list(
        Delivery.objects.filter(
            connection=erp,
            content_type=entry_type,
            object_id__in=entry_pks,
            state=Delivery.State.PENDING,
        )
        .order_by("id")
        .values_list("id", flat=True)
    )


# -- one event, now (the webhook's task) -------------------------------------------------------
def approval_event_post_now(
    *, inbox_item_id: int, batch: int = EVENT_BATCH
) -> dict[str, Any] | None:
    """Process a stored approval event in a sync run of its own and send the ERP postings it
    produced right away. Returns the run's id, status, counts and deliveries sent; None when the
    event is gone or no longer pending (processed by the cycle, by another task's batch, or by
    an earlier delivery of the same task message).

    Events that wait pending beside it are processed with it, oldest first, up to `batch` in
    all: one PSA read, one time-posting batch and one send for all of them. A burst of
    approvals then costs a few batches instead of one full pass per event (what keeps 20
    approvals a second within reach of two worker processes); the tasks of the events taken
    along find them processed and return at once.

    A failure to read the PSA (TransportError) or a DomainError is recorded on the run (status
    failed) and leaves the event pending for the cycle; other errors mark the run failed and
    propagate. Idempotent: see the module docstring.
    """
    item = (
        InboxItem.objects.filter(pk=inbox_item_id, system=System.PSA, entity=ENTITY)
        .only("id", "status", "correlation_id", "connection_id")
        .first()
    )
    if item is None or item.status != InboxItem.Status.PENDING:
        return None
    waiting = list(
        InboxItem.objects.filter(
            system=System.PSA,
            entity=ENTITY,
            status=InboxItem.Status.PENDING,
        )
        .exclude(pk=item.pk)
        .order_by("id")
        .values_list("id", flat=True)[: max(0, batch - 1)]
    )
    run = SyncRun.objects.create(
        kind=SyncRun.Kind.PROCESS,
        status=SyncRun.Status.RUNNING,
        started_at=timezone.now(),
        connection_id=item.connection_id,
        entity=ENTITY,
    )
    counts = ProcessCounts()
    error = ""
    delivered = 0
    finished = False
    with run_scope(run.id), correlation_scope(item.correlation_id):
        try:
            try:
                counts = approval_events_process(
                    inbox_ids=[item.id, *waiting], run=run, erp=erp_connection_get()
                )
            except (DomainError, TransportError) as exc:
                error = f"process {ENTITY}: {exc}"
                logger.warning("approval event %s waits for the cycle: %s", item.pk, exc)
            if counts.delivery_ids:
                delivered = deliveries_send(delivery_ids=counts.delivery_ids).delivered
            finished = True
        finally:
            if not finished:
                error = error or "stopped on an unexpected error (see the worker log)"
            run.status = SyncRun.Status.FAILED if error else SyncRun.Status.SUCCEEDED
            run.error = error[:10_000]
            run.finished_at = timezone.now()
            for name in _REPORTED[:-1]:  # a run records no deliveries count
                setattr(run, name, getattr(counts, name))
            run.delivered = delivered
            run.save(
                update_fields=[
                    "status",
                    "error",
                    "finished_at",
                    "created",
                    "updated",
                    "unchanged",
                    "refused",
                    "failed",
                    "delivered",
                ]
            )
    return {
        "events": counts.claimed,
        "stored": counts.stored,
        **{name: getattr(counts, name) for name in _REPORTED},
        "delivery_ids": counts.delivery_ids,
        "run_id": run.pk,
        "status": run.status,
        "delivered": delivered,
    }
