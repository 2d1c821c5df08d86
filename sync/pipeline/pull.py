"""Pulling: read one (connection, entity) page by page into the inbox, and keep its pull
position.

Each page is stored in the inbox and the pull position moved in ONE transaction, so a crash
mid-pull re-reads at most the page that was in hand. The pull position (`PullPosition`) is
`since` (the latest change time of the last complete pull: where the next one starts) and,
while a pull is under way, the `cursor` after its last committed page, the latest change time
it has `reached` and when it `started_at`. Connectors page in id order, not change order, so
moving `since` up before the pull ends could skip records on later pages; resuming from the
cursor with the old `since` cannot.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from sync.connectors.base import (
    PERMANENT,
    SourceConnector,
    TransportError,
    correlation_scope,
    instant_read,
    position_max,
)
from sync.integrations.registry import (
    ConnectionNotPullable,
    Integration,
    integration_for,
    source_connector_for,
)
from sync.pipeline.inbox import inbox_store, payload_hash
from sync.pipeline.models import Connection, PullPosition, SyncRun

logger = logging.getLogger(__name__)

# How far a vendor's clock may run ahead of ours (see position_cap).
CLOCK_SKEW_ALLOWANCE = dt.timedelta(seconds=120)


# -- the pull position ---------------------------------------------------------------------------
def pull_position_get(*, connection: Connection, entity: str) -> PullPosition:
    """The stored pull position of (connection, entity); an unsaved empty one before the first
    pull."""
    stored = PullPosition.objects.filter(connection=connection, entity=entity).first()
    return stored or PullPosition(connection=connection, entity=entity)


def pull_position_store(
    *,
    connection: Connection,
    entity: str,
    since: str | None,
    cursor: str | None,
    reached: str | None,
    started_at: dt.datetime | None,
) -> None:
    """Store where a pull has got. Call inside the transaction that stored the page, so the
    position never runs ahead of what was committed; raises RuntimeError outside one."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("Store a pull position inside the page's transaction.")
    PullPosition.objects.update_or_create(
        connection=connection,
        entity=entity,
        defaults={"since": since, "cursor": cursor, "reached": reached, "started_at": started_at},
    )


def position_later(current: str | None, candidate: str | None) -> str | None:
    """The later of two pull positions of one pull, never moving backwards.

    Feed positions (digits) compare as numbers, ISO 8601 instants with offsets as instants
    (`position_max`), NetSuite's fixed-width "YYYY-MM-DD HH:MM:SS" as text.
    """
    if candidate is None or candidate == "":
        return current
    if current is None or current == "":
        return candidate
    if current.isdigit() and candidate.isdigit():
        return candidate if int(candidate) > int(current) else current
    if "T" in current and "T" in candidate:
        return position_max(current, candidate)
    return max(current, candidate)


def position_earlier(reached: str | None, cap: str | None) -> str | None:
    """The earlier of the latest position reached and a cap; None when nothing was reached."""
    if not reached:
        return None
    if not cap:
        return reached
    return reached if position_later(reached, cap) == cap else cap


def position_cap(*, integration: Integration, entity: str, started: dt.datetime) -> str | None:
    """The latest `since` a pull that started at `started` may hand to the next one.

    Pages come in id order, not change order: a record changed after the pull passed its page
    has a change time below the latest one seen later in the same pull, so the next pull must
    start no later than this pull's start (less an allowance for the vendor's clock) or that
    change is skipped. Re-reading the overlap costs nothing but reads: the inbox skips equal
    payloads. Feed positions need no cap.
    """
    if entity in integration.feeds:
        return None
    return integration.position_format(started - CLOCK_SKEW_ALLOWANCE)


def _pull_position_advance(
    *,
    connection: Connection,
    integration: Integration,
    entity: str,
    since: str | None,
    cursor: str | None,
    reached: str | None,
    started_at: dt.datetime,
) -> None:
    """Store the position after a committed page (inside the page's transaction)."""
    if cursor is None:
        # The pull is complete: the next one starts from what it saw, capped at its start,
        # and never earlier than this one did.
        cap = position_cap(integration=integration, entity=entity, started=started_at)
        since = position_later(since, position_earlier(reached, cap))
        pull_position_store(
            connection=connection,
            entity=entity,
            since=since,
            cursor=None,
            reached=since,
            started_at=None,
        )
        return
    pull_position_store(
        connection=connection,
        entity=entity,
        since=since,
        cursor=cursor,
        reached=reached,
        started_at=started_at,
    )


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
    return integration_for(connection.dialect).pull_plan


def _external_id(integration: Integration, record: Mapping[str, Any]) -> str:
    value = record.get(integration.id_field)
    # A record without an id is still stored (nothing is lost); its content names it.
    return str(value) if value not in (None, "") else f"sha256:{payload_hash(record)[:40]}"


def _until_filter(
    integration: Integration, entity: str, records: list[dict], until: dt.datetime | None
) -> list[dict]:
    if until is None:
        return records
    kept = []
    for record in records:
        changed_at = integration.record_changed_at(entity, record)
        # A record whose change time cannot be read is kept: better stored twice than lost.
        if changed_at is None or changed_at <= until:
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
    connector: SourceConnector | None = None,
) -> int:
    """Pull `entity` from `connection` into the inbox; returns how many records were read.

    Incremental (no `since`/`until`): starts from the stored pull position and advances it in
    the same transaction as each page, so a crash re-reads at most one page and the position
    never moves backwards. A window (`since` and/or `until`, ISO 8601 instants) is a
    backfill: it ignores the stored position and does not move it. `until` is applied to each
    record's change time here (vendors filter only on "after"). `connector`: one already
    open for this connection (the cycle shares one across entities, and its OAuth token);
    the caller closes it.

    Idempotent: a page already stored adds nothing (`inbox_store` skips equal payloads).
    Raises TransportError (classified by the connector) and ConnectionNotPullable; pages
    committed before the error stay committed, with the position after them.
    """
    integration = integration_for(connection.dialect)
    allowed = (*integration.pull_plan, *integration.extra_entities)
    if entity not in allowed:
        raise ConnectionNotPullable(
            f"{connection.name} pulls {', '.join(allowed) or 'nothing'}, not {entity!r}."
        )
    backfill = since is not None or until is not None
    until_at = instant_read(until) if until is not None else None
    if until is not None and until_at is None:
        raise ValueError(f"until must be an ISO 8601 date or instant, got {until!r}")
    position = (
        PullPosition() if backfill else pull_position_get(connection=connection, entity=entity)
    )
    start = since if backfill else position.since
    reached = position.reached
    # A resumed pull keeps the start time of the pull it continues.
    started = (position.started_at if position.cursor else None) or timezone.now()
    pages = records = stored = 0
    # A stored position the vendor no longer honours (a Stripe cursor object deleted, a
    # Kantata feed position past retention: 410 cursor_expired) must not wedge the pull for
    # ever: the pull starts again once, from `since` (a feed from its oldest kept event).
    attempts = [(start, position.cursor)]
    if not backfill and position.cursor is not None:
        attempts.append((start, None))
    elif not backfill and entity in integration.feeds and start:
        attempts.append((None, None))
    owned = connector is None
    connector = connector or source_connector_for(connection, transport=transport)
    try:
        for number, (start, cursor) in enumerate(attempts, start=1):
            try:
                with correlation_scope(uuid.uuid4().hex):
                    for page in connector.pull(entity=entity, since=start, cursor=cursor):
                        kept = _until_filter(integration, entity, page.records, until_at)
                        with transaction.atomic():
                            result = inbox_store(
                                system=connection.system,
                                entity=entity,
                                connection=connection,
                                run_id=run.id,
                                records=[(_external_id(integration, r), r) for r in kept],
                            )
                            if not backfill:
                                reached = position_later(reached, page.position)
                                _pull_position_advance(
                                    connection=connection,
                                    integration=integration,
                                    entity=entity,
                                    since=start,
                                    cursor=page.next_cursor,
                                    reached=reached,
                                    started_at=started,
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
