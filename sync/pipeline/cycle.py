"""One sync cycle: pull every enabled connection into the inbox, process the inbox, deliver.

- `connection_pull` reads one (connection, entity) page by page through the connector of the
  connection's dialect. Each page is stored in the inbox and the pull position advanced in ONE
  transaction, so a crash mid-pull re-reads at most the page that was in hand.
- `inbox_process` hands pending inbox items, in batches, to the processor registered for their
  (system, entity), master data first and time entries last.
- `sync_cycle_run` does both for every enabled connection, then sends due deliveries, and
  records the whole pass as a `SyncRun` with its counts, status and error text.

The pull position kept in `PullWatermark.value` is the plain watermark (the highest change
marker of the last complete pull: the next pull's `since`) when no pull is half done. While a
pull is under way it is a small JSON object `{"since", "cursor", "mark"}`: the `since` that pull
started from, the cursor after the last committed page and the highest marker committed so far.
Connectors page in id order (not change order), so moving `since` up before the pull ends
could skip records on later pages; resuming from the cursor with the old `since` cannot.
A cursor too long to keep (a vendor's opaque query locator) is not kept: that pull then
resumes from its start, which re-reads pages but never skips one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from sync.connectors.base import (
    CONFIGURATION,
    PERMANENT,
    TransportError,
    correlation_scope,
    watermark_max,
)
from sync.connectors.kantata import CHANGE_EVENTS
from sync.errors import DomainError
from sync.integrations.registry import ConnectionNotPullable, source_connector_for
from sync.logging import run_scope
from sync.pipeline.connection_services import erp_connection_get
from sync.pipeline.delivery import deliveries_send_due
from sync.pipeline.inbox import inbox_store, payload_hash, watermark_advance, watermark_get
from sync.pipeline.master_data import PROCESSING_ORDER, PROCESSORS
from sync.pipeline.models import Connection, InboxItem, SyncRun
from sync.pipeline.models.connections import Dialect, System
from sync.pipeline.reoffer import parked_items_reoffer
from sync.pipeline.time_posting.flow import time_entries_process

logger = logging.getLogger(__name__)

# What a cycle pulls from each dialect, in this order (reference data before what points at it).
PULL_PLAN: dict[str, tuple[str, ...]] = {
    # timeBill: what the ERP holds already by our key (target_records.py), for time posting.
    Dialect.NETSUITE: (
        "currency",
        "subsidiary",
        "accountingPeriod",
        "department",
        "customer",
        "employee",
        "job",
        "projectTask",
        "timeBill",
    ),
    Dialect.SCIM: ("Users",),
    # Time entries and expenses: the approved ones (KantataConnector's approved_only).
    Dialect.KANTATA: ("workspaces", "stories", "assignments", "users", "time_entries", "expenses"),
    Dialect.SALESFORCE: ("Account", "Opportunity", "Contract"),
    Dialect.STRIPE: ("customers", "invoices"),
    # CSV drops arrive as files, not pulls.
}
# Entities a pull accepts beyond the cycle's plan (backfills, explicit pulls).
EXTRA_ENTITIES: dict[str, tuple[str, ...]] = {
    Dialect.KANTATA: ("change_events",),
    Dialect.STRIPE: ("invoiceitems", "events"),
}


# Where each dialect keeps a record's id and its change marker (for `until`).
ID_FIELD = {Dialect.SALESFORCE: "Id"}
MARKER_FIELD: dict[str, str] = {
    Dialect.NETSUITE: "lastmodified_at",
    Dialect.KANTATA: "updated_at",
    Dialect.SALESFORCE: "LastModifiedDate",
    Dialect.STRIPE: "created",
}

TIME_ENTRIES = (System.PSA.value, "time_entries")
PROCESS_BATCH = 1000
PROCESS_LIMIT = 50_000
DELIVERY_BATCH = 200
DELIVERY_ROUNDS = 50  # at most 10,000 deliveries per cycle; the sweeper sends the rest
POSITION_MAX_LENGTH = 255  # PullWatermark.value
# How far a vendor's clock may run ahead of ours (see marker_cap).
CLOCK_SKEW_ALLOWANCE = dt.timedelta(seconds=120)

Processor = Callable[..., Any]


# -- pull position -------------------------------------------------------------------------------
@dataclass(frozen=True)
class PullPosition:
    since: str | None = None  # where the next pull starts, or the pull under way started
    cursor: str | None = None  # resume after the last committed page; None: no pull under way
    mark: str | None = None  # the highest change marker committed so far
    started: str | None = None  # when the pull under way started (ISO 8601, our clock)

    def encode(self) -> str | None:
        """The PullWatermark value; None when the cursor is too long to keep."""
        if self.cursor is None:
            return self.since or ""
        value = json.dumps(
            {
                "since": self.since,
                "cursor": self.cursor,
                "mark": self.mark,
                "started": self.started,
            },
            separators=(",", ":"),
        )
        return value if len(value) <= POSITION_MAX_LENGTH else None

    @classmethod
    def decode(cls, value: str) -> PullPosition:
        if value.startswith("{"):
            data = json.loads(value)
            return cls(
                since=data.get("since"),
                cursor=data.get("cursor"),
                mark=data.get("mark"),
                started=data.get("started"),
            )
        return cls(since=value or None, mark=value or None)


def pull_position_get(*, connection: Connection, entity: str) -> PullPosition:
    return PullPosition.decode(watermark_get(connection=connection, entity=entity))


def marker_later(current: str | None, candidate: str | None) -> str | None:
    """The later of two change markers of one pull, never moving backwards.

    Feed positions (digits) compare as numbers, ISO 8601 instants with offsets as instants
    (`watermark_max`), NetSuite's fixed-width "YYYY-MM-DD HH:MM:SS" as text.
    """
    if candidate is None or candidate == "":
        return current
    if current is None or current == "":
        return candidate
    if current.isdigit() and candidate.isdigit():
        return candidate if int(candidate) > int(current) else current
    if "T" in current and "T" in candidate:
        return watermark_max(current, candidate)
    return max(current, candidate)


def marker_earlier(mark: str | None, cap: str | None) -> str | None:
    """The earlier of the highest marker seen and a cap; None when nothing was seen."""
    if not mark:
        return None
    if not cap:
        return mark
    return mark if marker_later(mark, cap) == cap else cap


def marker_cap(dialect: str, entity: str, started: dt.datetime) -> str | None:
    """The latest `since` a pull that started at `started` may hand to the next one.

    Pages come in id order, not change order: a record changed after the pull passed its page
    has a marker below the highest one seen later in the same pull, so the next pull must
    start no later than this pull's start (less an allowance for the vendor's clock) or that
    change is skipped. Re-reading the overlap costs nothing but reads: the inbox skips equal
    payloads. Feed positions (change events) need no cap.
    """
    if entity == CHANGE_EVENTS:
        return None
    moment = (started - CLOCK_SKEW_ALLOWANCE).astimezone(dt.UTC)
    if dialect == Dialect.NETSUITE:
        return moment.strftime("%Y-%m-%d %H:%M:%S")  # SuiteQL's format (account time zone)
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


# -- pulling -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PageProgress:
    connection: str
    entity: str
    pages: int
    records: int
    stored: int


def pull_entities(connection: Connection) -> tuple[str, ...]:
    """The entities a cycle pulls from this connection (empty for a dialect nobody pulls)."""
    return PULL_PLAN.get(connection.dialect, ())


def _external_id(dialect: str, record: Mapping[str, Any]) -> str:
    value = record.get(ID_FIELD.get(dialect, "id"))
    # A record without an id is still stored (nothing is lost); its content names it.
    return str(value) if value not in (None, "") else f"sha256:{payload_hash(record)[:40]}"


def _instant(value: Any) -> dt.datetime | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    # NetSuite's SuiteQL marker has no offset: the sandbox (and our accounts) run in UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _record_marker(dialect: str, entity: str, record: Mapping[str, Any]) -> dt.datetime | None:
    if dialect == Dialect.SCIM:
        return _instant((record.get("meta") or {}).get("lastModified"))
    if entity == "change_events":
        return _instant(record.get("occurred_at"))
    return _instant(record.get(MARKER_FIELD.get(dialect, "updated_at")))


def _until_filter(
    dialect: str, entity: str, records: list[dict], until: dt.datetime | None
) -> list[dict]:
    if until is None:
        return records
    kept = []
    for record in records:
        marker = _record_marker(dialect, entity, record)
        # A record whose marker cannot be read is kept: better stored twice than lost.
        if marker is None or marker <= until:
            kept.append(record)
    return kept


def connection_pull(
    *,
    connection: Connection,
    entity: str,
    run: SyncRun,
    since: str | None = None,
    until: str | None = None,
    transport: Any = None,
    on_page: Callable[[PageProgress], None] | None = None,
    connector: Any = None,
) -> int:
    """Pull `entity` from `connection` into the inbox; returns how many records were read.

    Incremental (no `since`/`until`): starts from the stored pull position and advances it in
    the same transaction as each page, so a crash re-reads at most one page and the position
    never moves backwards. A window (`since` and/or `until`, ISO 8601 instants) is a
    backfill: it ignores the stored position and does not move it. `until` is applied to each
    record's change marker here (vendors filter only on "after"). `connector`: one already
    open for this connection (the cycle shares one across entities, and its OAuth token);
    the caller closes it.

    Idempotent: a page already stored adds nothing (`inbox_store` skips equal payloads).
    Raises TransportError (classified by the connector) and ConnectionNotPullable; pages
    committed before the error stay committed, with the position after them.
    """
    allowed = (*PULL_PLAN.get(connection.dialect, ()), *EXTRA_ENTITIES.get(connection.dialect, ()))
    if entity not in allowed:
        raise ConnectionNotPullable(
            f"{connection.name} pulls {', '.join(allowed) or 'nothing'}, not {entity!r}."
        )
    backfill = since is not None or until is not None
    until_at = _instant(until) if until is not None else None
    if until is not None and until_at is None:
        raise ValueError(f"until must be an ISO 8601 date or instant, got {until!r}")
    position = (
        PullPosition() if backfill else pull_position_get(connection=connection, entity=entity)
    )
    start = since if backfill else position.since
    mark = position.mark
    # A resumed pull keeps the start time of the pull it continues.
    started = (_instant(position.started) if position.cursor else None) or timezone.now()
    pages = records = stored = 0
    # A stored position the vendor no longer honours (a Stripe cursor object deleted, a
    # Kantata feed position past retention: 410 cursor_expired) must not wedge the pull for
    # ever: the pull starts again once, from `since` (a feed from its oldest kept event).
    attempts = [(start, position.cursor)]
    if not backfill and position.cursor is not None:
        attempts.append((start, None))
    elif not backfill and entity == CHANGE_EVENTS and start:
        attempts.append((None, None))
    owned = connector is None
    connector = connector or source_connector_for(connection, transport=transport)
    try:
        for number, (start, cursor) in enumerate(attempts, start=1):
            try:
                with correlation_scope(uuid.uuid4().hex):
                    for page in connector.pull(entity=entity, since=start, cursor=cursor):
                        kept = _until_filter(connection.dialect, entity, page.records, until_at)
                        with transaction.atomic():
                            result = inbox_store(
                                system=connection.system,
                                entity=entity,
                                connection=connection,
                                run_id=run.id,
                                records=[(_external_id(connection.dialect, r), r) for r in kept],
                            )
                            if not backfill:
                                mark = marker_later(mark, page.watermark)
                                _position_advance(
                                    connection,
                                    entity,
                                    PullPosition(
                                        since=start,
                                        cursor=page.next_cursor,
                                        mark=mark,
                                        started=started.isoformat(),
                                    ),
                                )
                            SyncRun.objects.filter(pk=run.pk).update(pulled=F("pulled") + len(kept))
                        run.pulled += len(kept)
                        pages += 1
                        records += len(kept)
                        stored += len(result.new)
                        logger.info(
                            "pulled %s/%s page %s: %s records, %s new",
                            connection.name,
                            entity,
                            pages,
                            len(kept),
                            len(result.new),
                        )
                        if on_page is not None:
                            on_page(
                                PageProgress(
                                    connection=connection.name,
                                    entity=entity,
                                    pages=pages,
                                    records=records,
                                    stored=stored,
                                )
                            )
                break
            except TransportError as exc:
                if pages or exc.kind != PERMANENT or number == len(attempts):
                    raise
                logger.warning(
                    "pull %s/%s cannot resume from %s (%s): starting it again",
                    connection.name,
                    entity,
                    cursor or start,
                    exc,
                )
    finally:
        if owned:
            connector.close()
    return records


def _position_advance(connection: Connection, entity: str, position: PullPosition) -> None:
    """Store the position after a committed page (inside the page's transaction)."""
    if position.cursor is None:
        # The pull is complete: the next one starts from what it saw, capped at its start,
        # and never earlier than this one did.
        started = _instant(position.started)
        cap = marker_cap(connection.dialect, entity, started) if started else None
        since = marker_later(position.since, marker_earlier(position.mark, cap))
        position = PullPosition(since=since, mark=since)
    value = position.encode()
    if value is not None:  # a cursor too long to keep: the position stays where it was
        watermark_advance(connection=connection, entity=entity, value=value)


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


def processing_registry(
    *, erp: Connection | None
) -> tuple[dict[tuple[str, str], Processor], list[tuple[str, str]]]:
    """The processors by (system, entity) and the order to run them in: master data
    (`sync.pipeline.master_data`'s PROCESSORS and PROCESSING_ORDER) first, then PSA approval
    events, PSA time entries last (they need the ERP connection to post to).
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
    if erp is not None:
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
                for name in ("created", "updated", "unchanged", "refused", "failed"):
                    setattr(totals, name, getattr(totals, name) + int(getattr(counts, name, 0)))
    return totals


# -- the cycle -----------------------------------------------------------------------------------
def _deliver(
    *, erp: Connection | None, transport_for: Callable[[Connection], Any] | None
) -> tuple[int, int]:
    """Send due deliveries in rounds; returns (delivered, failed for good)."""
    options: dict[str, Any] = {}
    if transport_for is not None and erp is not None:
        # One options set serves every target in deliveries_send_due; the ERP is the only
        # delivery target so far (TARGET_CONNECTORS).
        options["transport"] = transport_for(erp)
    delivered = failed = 0
    for _ in range(DELIVERY_ROUNDS):
        counts = deliveries_send_due(limit=DELIVERY_BATCH, connector_options=options)
        delivered += counts.delivered
        failed += counts.failed
        if counts.claimed < DELIVERY_BATCH:
            break
    return delivered, failed


def sync_cycle_run(
    *,
    connections: Iterable[Connection] | None = None,
    transport_for: Callable[[Connection], Any] | None = None,
    processors: Mapping[tuple[str, str], Processor] | None = None,
    order: Sequence[tuple[str, str]] | None = None,
    deliver: bool = True,
) -> SyncRun:
    """One full cycle: pull every enabled connection's entities (`PULL_PLAN`), process the
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
            for name in ("created", "updated", "unchanged", "refused", "failed"):
                setattr(run, name, getattr(run, name) + getattr(totals, name))
            stages["process"] = round(time.monotonic() - clock, 3)

            if deliver:
                clock = time.monotonic()
                try:
                    delivered, failed = _deliver(erp=erp, transport_for=transport_for)
                except (DomainError, TransportError) as exc:
                    errors.append(f"deliver: {exc}")
                else:
                    run.delivered += delivered
                    run.failed += failed
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
