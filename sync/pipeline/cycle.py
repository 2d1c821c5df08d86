"""One sync cycle: pull every enabled connection into the inbox, process the inbox, deliver.

- `inbox_process` hands pending inbox items, in batches, to the processor registered for their
  (system, entity) (`processing_registry`), master data first and time entries last.
- `sync_cycle_run` pulls every enabled connection's plan (`sync.pipeline.pull`), processes,
  sends due deliveries, and records the whole pass as a `SyncRun` with its counts, status and
  error text. `sync_backfill_run` re-reads a window without moving the pull position.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from sync.connectors.base import CONFIGURATION, TransportError
from sync.errors import DomainError
from sync.integrations.registry import source_connector_for
from sync.logging import run_scope
from sync.pipeline.billing.flow import billing_cycle_run, billing_follow_up
from sync.pipeline.billing.history import ENTITY as BILLED_INVOICES_ENTITY
from sync.pipeline.billing.history import billed_invoices_process
from sync.pipeline.connection_services import erp_connection_get
from sync.pipeline.delivery import deliveries_send_due
from sync.pipeline.expense_posting.processors import expense_processors
from sync.pipeline.master_data import PROCESSING_ORDER, PROCESSORS
from sync.pipeline.models import Connection, InboxItem, SyncRun
from sync.pipeline.models.connections import System
from sync.pipeline.payments.flow import payments_follow_up
from sync.pipeline.pull import PageProgress, connection_pull, pull_entities
from sync.pipeline.quote_to_cash.advance import projects_waiting_count, quote_to_cash_advance
from sync.pipeline.quote_to_cash.flows import PROCESSORS as QUOTE_TO_CASH
from sync.pipeline.reoffer import parked_items_reoffer
from sync.pipeline.time_posting.flow import time_entries_process

logger = logging.getLogger(__name__)

TIME_ENTRIES = (System.PSA.value, "time_entries")
BILLED_INVOICES = (System.BILLING.value, BILLED_INVOICES_ENTITY)
PROCESS_BATCH = 1000
PROCESS_LIMIT = 50_000
DELIVERY_BATCH = 200
DELIVERY_ROUNDS = 50  # at most 10,000 deliveries per cycle; the sweeper sends the rest
# Deliveries that set the next ones in motion (a customer → its CRM link, billing customer and
# project; a job → its WBS and workspace): that many deliver-then-advance passes per cycle.
ADVANCE_PASSES = 5

Processor = Callable[..., Any]


# -- processing ----------------------------------------------------------------------------------
@dataclass
class ProcessTotals:
    items: int = 0
    batches: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    by_flow: dict[str, Counter] = field(default_factory=dict)  # "system/entity" → counts


def processing_registry(
    *, erp: Connection | None
) -> tuple[dict[tuple[str, str], Processor], list[tuple[str, str]]]:
    """The processors by (system, entity) and the order to run them in: master data
    (`sync.pipeline.master_data`'s PROCESSORS and PROCESSING_ORDER) first, then PSA approval
    events, ERP expense reports and PSA expenses, PSA time entries last (expenses and time
    need the ERP connection to post to).
    """
    # Imported here: approval_events reads the PSA through this module's connectors.
    from sync.pipeline.approval_events import ENTITY as APPROVAL_EVENTS
    from sync.pipeline.approval_events import approval_events_process

    processors: dict[tuple[str, str], Processor] = {}
    order: list[tuple[str, str]] = []
    processors.update(PROCESSORS)
    order.extend(key for key in PROCESSING_ORDER if key != TIME_ENTRIES)
    order.extend(key for key in PROCESSORS if key not in order and key != TIME_ENTRIES)
    # Approval events left pending by their webhook task: each stores its approved record and
    # posts it (time entries) at once, so they come before the pulled time entries. Without an
    # ERP they only store it, and the time entries wait.
    approval_events = (System.PSA.value, APPROVAL_EVENTS)
    processors[approval_events] = partial(approval_events_process, erp=erp)
    order.append(approval_events)
    for key, processor in expense_processors(erp=erp):  # ERP expense reports, PSA expenses
        processors[key] = processor
        order.append(key)
    # What billing billed already (its invoices' project months), read before candidates.
    processors[BILLED_INVOICES] = billed_invoices_process
    order.append(BILLED_INVOICES)
    if erp is not None:
        # CRM deals and contracts become ERP customers and projects: they need the ERP.
        processors.update(QUOTE_TO_CASH)
        order[order.index(approval_events) : order.index(approval_events)] = QUOTE_TO_CASH
        processors[TIME_ENTRIES] = partial(time_entries_process, erp=erp)
        order.append(TIME_ENTRIES)
    else:
        logger.warning("no enabled ERP connection: PSA time entries wait in the inbox")
    return processors, order


def inbox_process(
    *,
    run: SyncRun,
    limit: int = PROCESS_LIMIT,
    batch_size: int = PROCESS_BATCH,
    processors: Mapping[tuple[str, str], Processor] | None = None,
    order: Sequence[tuple[str, str]] | None = None,
    erp: Connection | None = None,
) -> ProcessTotals:
    """Process up to `limit` pending inbox items, (system, entity) by (system, entity) in
    `order`, oldest first, `batch_size` ids per processor call. Items of a (system, entity)
    with no processor stay pending.

    `processors`/`order` default to `processing_registry(erp=...)`, with `erp` defaulting to
    the enabled ERP connection. A processor is called as `processor(inbox_ids=…, run=…)` and
    returns counts (created, updated, unchanged, refused, failed attributes). A batch that
    raises DomainError or TransportError is rolled back by its processor, counted as failed
    and recorded in `errors`; the rest of that (system, entity) waits for the next cycle.
    """
    if processors is None:
        if erp is None:
            erp = erp_connection_get()
        processors, default_order = processing_registry(erp=erp)
        order = default_order if order is None else order
    order = list(processors) if order is None else list(order)
    totals = ProcessTotals()
    remaining = limit
    with run_scope(run.id):
        for key in order:
            processor = processors.get(key)
            if processor is None or remaining <= 0:
                continue
            system, entity = key
            ids = list(
                InboxItem.objects.filter(
                    status=InboxItem.Status.PENDING, system=system, entity=entity
                )
                .order_by("id")
                .values_list("id", flat=True)[:remaining]
            )
            remaining -= len(ids)
            for offset in range(0, len(ids), batch_size):
                batch = ids[offset : offset + batch_size]
                try:
                    counts = processor(inbox_ids=batch, run=run)
                except (DomainError, TransportError) as exc:
                    totals.failed += len(batch)
                    totals.errors.append(f"process {system}/{entity}: {exc}")
                    logger.warning("processing %s/%s stopped: %s", system, entity, exc)
                    break
                totals.items += len(batch)
                totals.batches += 1
                flow = totals.by_flow.setdefault(f"{system}/{entity}", Counter())
                for name in ("created", "updated", "unchanged", "refused", "failed"):
                    setattr(totals, name, getattr(totals, name) + int(getattr(counts, name, 0)))
                    flow[name] += int(getattr(counts, name, 0))
    return totals


# -- the cycle -----------------------------------------------------------------------------------
def _deliver(
    *, erp: Connection | None, transport_for: Callable[[Connection], Any] | None
) -> tuple[int, int]:
    """Send due deliveries in rounds; returns (delivered, failed for good)."""
    options: dict[str, Any] = {}
    if transport_for is not None and erp is not None:
        # One options set serves every target in deliveries_send_due: a test's transport
        # (the in-process sandbox) answers for every system.
        options["transport"] = transport_for(erp)
    delivered = failed = 0
    for _ in range(DELIVERY_ROUNDS):
        counts = deliveries_send_due(limit=DELIVERY_BATCH, connector_options=options)
        delivered += counts.delivered
        failed += counts.failed
        if counts.claimed < DELIVERY_BATCH:
            break
    return delivered, failed


def _advance_and_deliver(
    *, run: SyncRun, erp: Connection | None, transport_for: Callable[[Connection], Any] | None
) -> None:
    """What delivered writes set in motion (quote_to_cash.advance), delivered in the same
    cycle: at most ADVANCE_PASSES passes, stopping when a pass enqueues nothing."""
    done: Counter = Counter()
    for _ in range(ADVANCE_PASSES):
        try:
            advanced = quote_to_cash_advance(run=run)
        except IntegrityError as exc:
            # Another cycle linked the same delivery first (a unique ref): its pass stands,
            # this one rolled back; the next cycle picks up whatever is left.
            logger.info("quote-to-cash follow-ups raced another cycle: %s", exc)
            break
        done.update(advanced)
        if not advanced.get("deliveries"):
            break
        delivered, failed = _deliver(erp=erp, transport_for=transport_for)
        run.delivered, run.failed = run.delivered + delivered, run.failed + failed
    done["projects waiting for their customer"] = projects_waiting_count()
    run.flow_counts["quote to cash"] = +done


def sync_cycle_run(
    *,
    connections: Iterable[Connection] | None = None,
    transport_for: Callable[[Connection], Any] | None = None,
    processors: Mapping[tuple[str, str], Processor] | None = None,
    order: Sequence[tuple[str, str]] | None = None,
    deliver: bool = True,
) -> SyncRun:
    """One full cycle: pull every enabled connection's entities (its pull plan), process the
    inbox, send due deliveries. Returns the finished SyncRun.

    A pull that fails (TransportError, DomainError) is recorded and the cycle goes on with the
    other pulls: one system down does not stop the rest. The run ends `failed` with every such
    error in its `error` text, else `succeeded`; an unexpected exception also marks it failed
    and propagates. `run.stage_seconds` (not stored) holds each stage's duration.
    `transport_for(connection)` replaces the network (tests: the in-process sandbox).
    Idempotent: a second cycle over unchanged sources stores, posts and delivers nothing new.
    """
    pool = (
        list(Connection.objects.filter(enabled=True))
        if connections is None
        else [c for c in connections if c.enabled]
    )
    run = SyncRun.objects.create(
        kind=SyncRun.Kind.CYCLE,
        status=SyncRun.Status.RUNNING,
        started_at=timezone.now(),
        connection=pool[0] if len(pool) == 1 else None,
    )
    errors: list[str] = []
    stages: dict[str, float] = {}
    run.stage_seconds = stages
    run.reoffered = 0  # parked items put back to pending before processing (not stored)
    run.flow_counts = {}  # counts per flow, "system/entity" or a follow-up step (not stored)
    finished = False
    with run_scope(run.id):
        try:
            clock = time.monotonic()
            for connection in pool:
                _connection_pull_all(
                    connection=connection, run=run, errors=errors, transport_for=transport_for
                )
            stages["pull"] = round(time.monotonic() - clock, 3)

            clock = time.monotonic()
            erp = erp_connection_get()
            if processors is None:
                processors, default_order = processing_registry(erp=erp)
                order = default_order if order is None else order
                # Only what this cycle can process (no ERP: time entries stay parked).
                run.reoffered = parked_items_reoffer(processable=processors.keys())
            totals = inbox_process(run=run, processors=processors, order=order, erp=erp)
            errors.extend(totals.errors)
            run.flow_counts.update(totals.by_flow)
            for name in ("created", "updated", "unchanged", "refused", "failed"):
                setattr(run, name, getattr(run, name) + getattr(totals, name))
            # Billing after the inbox (what was posted now may be billed), before delivery.
            billing_cycle_run(run=run)
            stages["process"] = round(time.monotonic() - clock, 3)

            if deliver:
                clock = time.monotonic()
                try:
                    delivered, failed = _deliver(erp=erp, transport_for=transport_for)
                    run.delivered, run.failed = run.delivered + delivered, run.failed + failed
                    _advance_and_deliver(run=run, erp=erp, transport_for=transport_for)
                    # Issued invoices numbered and offered to the ERP, delivered now.
                    if billing_follow_up(run=run, transport_for=transport_for):
                        delivered, failed = _deliver(erp=erp, transport_for=transport_for)
                        run.delivered, run.failed = run.delivered + delivered, run.failed + failed
                    # Cash applied in one system carried to the other, delivered now.
                    if payments_follow_up(run=run, transport_for=transport_for):
                        delivered, failed = _deliver(erp=erp, transport_for=transport_for)
                        run.delivered, run.failed = run.delivered + delivered, run.failed + failed
                except (DomainError, TransportError) as exc:
                    errors.append(f"deliver: {exc}")
                stages["deliver"] = round(time.monotonic() - clock, 3)
            finished = True
        finally:
            _run_finish(run, errors=errors, finished=finished)
    logger.info(
        "cycle %s %s: pulled=%s created=%s updated=%s unchanged=%s refused=%s failed=%s "
        "delivered=%s reoffered=%s stages=%s",
        run.pk,
        run.status,
        run.pulled,
        run.created,
        run.updated,
        run.unchanged,
        run.refused,
        run.failed,
        run.delivered,
        run.reoffered,
        stages,
    )
    return run


def _connection_pull_all(
    *,
    connection: Connection,
    run: SyncRun,
    errors: list[str],
    transport_for: Callable[[Connection], Any] | None,
) -> None:
    entities = pull_entities(connection)
    if not entities:
        return
    transport = transport_for(connection) if transport_for is not None else None
    try:
        connector = source_connector_for(connection, transport=transport)
    except ValueError as exc:  # ConnectionConfig refuses the settings (a zero concurrency…)
        errors.append(f"pull {connection.name}: the connection's settings are invalid: {exc}")
        return
    try:
        for entity in entities:
            try:
                connection_pull(connection=connection, entity=entity, run=run, connector=connector)
            except TransportError as exc:
                errors.append(f"pull {connection.name}/{entity}: {exc}")
                logger.warning("pull %s/%s failed: %s", connection.name, entity, exc)
                if exc.kind == CONFIGURATION:
                    # Credentials or address are wrong: every other entity would fail alike.
                    break
            except DomainError as exc:
                errors.append(f"pull {connection.name}/{entity}: {exc}")
                logger.warning("pull %s/%s refused: %s", connection.name, entity, exc)
    finally:
        connector.close()


def _run_finish(run: SyncRun, *, errors: list[str], finished: bool) -> None:
    if not finished:
        errors = [*errors, "the cycle stopped on an unexpected error (see the worker log)"]
    run.status = SyncRun.Status.FAILED if errors else SyncRun.Status.SUCCEEDED
    run.error = "\n".join(errors)[:10_000]
    run.finished_at = timezone.now()
    # `pulled` is kept current page by page in the database; the rest is written here.
    run.save(
        update_fields=[
            "status",
            "error",
            "finished_at",
            "pulled",
            "created",
            "updated",
            "unchanged",
            "refused",
            "failed",
            "delivered",
        ]
    )


def sync_backfill_run(
    *,
    connection: Connection,
    entity: str,
    since: str,
    until: str | None = None,
    transport: Any = None,
    on_page: Callable[[PageProgress], None] | None = None,
) -> SyncRun:
    """Re-read `entity` changed in [since, until] into the inbox, as a BACKFILL run. The stored
    pull position is neither used nor moved. Processing happens in the next cycle."""
    run = SyncRun.objects.create(
        kind=SyncRun.Kind.BACKFILL,
        status=SyncRun.Status.RUNNING,
        started_at=timezone.now(),
        connection=connection,
        entity=entity,
    )
    errors: list[str] = []
    finished = False
    with run_scope(run.id):
        try:
            try:
                connection_pull(
                    connection=connection,
                    entity=entity,
                    run=run,
                    since=since,
                    until=until,
                    transport=transport,
                    on_page=on_page,
                )
            except (TransportError, DomainError) as exc:
                errors.append(f"backfill {connection.name}/{entity}: {exc}")
            finished = True
        finally:
            _run_finish(run, errors=errors, finished=finished)
    return run
