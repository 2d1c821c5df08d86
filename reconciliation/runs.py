"""Reconciliation runs (service): stage both sides of each pair, compare them in SQL, explain
what is explained, store the breaks, and keep the exception queues in step with them.

`reconciliation_run` is the one entry point (the command, the after-cycle task and the nightly
task call it). Per pair: the source's canonical rows and the target's records as its own API
lists them are staged (reconciliation.staging), compared one statement per break kind
(reconciliation.compare), explained (reconciliation.explain) and stored as ReconciliationBreaks.
A new unexplained break opens an exception item in the pair's queue (reconciliation.break_items);
an item whose break is gone is resolved.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from reconciliation.break_items import break_items_sync
from reconciliation.compare import Candidate, differences_find, staged_rows_attribute, staged_totals
from reconciliation.explain import explanations_find
from reconciliation.models import ReconciliationBreak, ReconciliationRun
from reconciliation.pairs import time_bills
from reconciliation.pairs import workers as workers_pairs
from reconciliation.pairs.base import Pair, Row, Scope, from_minor
from reconciliation.pairs.registry import PAIRS, pair_get
from reconciliation.staging import (
    ANALYZE_FROM,
    staged_rows_analyze,
    staged_rows_clear,
    staged_rows_write,
)
from sync.connectors.base import TransportError
from sync.errors import DomainError
from sync.integrations.registry import source_connector_for
from sync.models import Currency, TimeEntry, Worker
from sync.pipeline.models import Connection, SyncRun

logger = logging.getLogger(__name__)


class ReconciliationRefused(DomainError):
    """The run cannot start as asked (an unknown pair, a malformed period)."""


def period_check(period: str) -> str:
    """`period` if it is "YYYY-MM" (or empty). Raises ReconciliationRefused otherwise."""
    if not period:
        return ""
    try:
        dt.date.fromisoformat(f"{period}-01")
    except ValueError:
        raise ReconciliationRefused(f"a period is YYYY-MM, e.g. 2026-10; not {period!r}") from None
    if len(period) != 7:
        raise ReconciliationRefused(f"a period is YYYY-MM, e.g. 2026-10; not {period!r}")
    return period


def reconciliation_run(
    *,
    trigger: str,
    pairs: Sequence[str] | None = None,
    period: str = "",
    legal_entity_id: int | None = None,
    project_id: int | None = None,
    sync_run: SyncRun | None = None,
    transport_for: Callable[[Connection], Any] | None = None,
) -> ReconciliationRun:
    """Run a reconciliation of `pairs` (default: every pair) over the scope; returns the
    finished run with its breaks stored.

    Idempotent in effect: a second run over unchanged systems finds the same breaks, stores
    them under a new run and opens no second exception item. A pair whose target cannot be
    read (no enabled connection, a transport failure) is recorded in `error` and the run ends
    `failed`; the other pairs are still compared. Raises ReconciliationRefused for an unknown
    pair or a malformed period, before anything is written. `transport_for(connection)`
    replaces the network (tests: the in-process sandbox).
    """
    names = list(pairs or PAIRS)
    try:
        chosen = [pair_get(name) for name in names]
    except KeyError as exc:
        raise ReconciliationRefused(str(exc.args[0])) from None
    period = period_check(period)
    started = timezone.now()
    run = ReconciliationRun.objects.create(
        trigger=trigger,
        period=period,
        pairs=names,
        legal_entity_id=legal_entity_id,
        project_id=project_id,
        sync_run=sync_run,
        started_at=started,
    )
    scope = Scope(
        cutoff=started, period=period, legal_entity_id=legal_entity_id, project_id=project_id
    )
    errors: list[str] = []
    try:
        for pair in chosen:
            try:
                _pair_reconcile(run=run, pair=pair, scope=scope, transport_for=transport_for)
            except (TransportError, DomainError) as exc:
                errors.append(f"{pair.name}: {exc}")
                logger.warning("reconciliation %s: %s failed: %s", run.pk, pair.name, exc)
            finally:
                staged_rows_clear(run_id=run.pk)
    except DatabaseError:
        run.status, run.error = ReconciliationRun.Status.FAILED, "a database error stopped it"
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "finished_at"])
        raise
    run.status = ReconciliationRun.Status.FAILED if errors else ReconciliationRun.Status.SUCCEEDED
    run.error = "\n".join(errors)
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at", "totals", "break_counts"])
    return run


def _target_connection(pair: Pair, system: str = "") -> Connection:
    system = system or pair.target_system
    connection = Connection.objects.filter(enabled=True, system=system).order_by("id").first()
    if connection is None:
        raise ReconciliationRefused(f"no enabled {system} connection to read from")
    return connection


def _source_rows(
    *, pair: Pair, scope: Scope, transport_for: Callable[[Connection], Any] | None
) -> Iterator[list[Row]]:
    """The pair's source rows: canonical, or read through the source's API (`source_system`)."""
    if not pair.source_system:
        yield from pair.source_rows(scope)
        return
    connection = _target_connection(pair, pair.source_system)
    connector = source_connector_for(
        connection, transport=transport_for(connection) if transport_for else None
    )
    try:
        yield from pair.source_rows(scope, connector)
    finally:
        connector.close()


def _pair_reconcile(
    *,
    run: ReconciliationRun,
    pair: Pair,
    scope: Scope,
    transport_for: Callable[[Connection], Any] | None,
) -> None:
    connection = _target_connection(pair)
    staged = 0
    for rows in _source_rows(pair=pair, scope=scope, transport_for=transport_for):
        staged += staged_rows_write(run_id=run.pk, pair=pair.name, side="s", rows=rows)
    connector = source_connector_for(
        connection, transport=transport_for(connection) if transport_for else None
    )
    try:
        for rows in pair.target_rows(scope, connector):
            staged += staged_rows_write(run_id=run.pk, pair=pair.name, side="t", rows=rows)
    finally:
        connector.close()
    if staged >= ANALYZE_FROM:
        staged_rows_analyze()
    if pair.attribute:
        staged_rows_attribute(run_id=run.pk, pair=pair.name)
    digits = dict(Currency.objects.values_list("code", "minor_units"))
    run.totals[pair.name] = _totals(staged_totals(run_id=run.pk, pair=pair.name), digits)
    candidates = differences_find(run_id=run.pk, pair=pair.name)
    reasons = explanations_find(pair=pair, candidates=candidates, cutoff=scope.cutoff)
    breaks = [
        _break(run=run, pair=pair, candidate=c, explanation=why, digits=digits)
        for c, why in zip(candidates, reasons, strict=True)
    ]
    with transaction.atomic():
        ReconciliationBreak.objects.bulk_create(breaks, batch_size=1000)
        break_items_sync(run=run, pair=pair, scope=scope, breaks=breaks, candidates=candidates)
    counts: dict[str, dict[str, int]] = {}
    for b in breaks:
        tally = counts.setdefault(b.kind, {"explained": 0, "unexplained": 0})
        tally["explained" if b.explained else "unexplained"] += 1
    run.break_counts[pair.name] = counts


def _totals(
    totals: dict[str, dict[str, tuple[int, int | None, int | None]]], digits: dict[str, int]
) -> dict[str, Any]:
    named = {"s": "source", "t": "target"}
    return {
        named[side]: {
            currency or "-": {
                "count": count,
                "quantity": None if quantity is None else str(from_minor(quantity, digits=2)),
                "amount": None
                if amount is None
                else str(from_minor(amount, digits=digits.get(currency, 2))),
            }
            for currency, (count, quantity, amount) in per.items()
        }
        for side, per in totals.items()
    }


def _money(value: int | None, currency: str, digits: dict[str, int]) -> Decimal | None:
    return from_minor(value, digits=digits.get(currency, 2))


def _break(
    *,
    run: ReconciliationRun,
    pair: Pair,
    candidate: Candidate,
    explanation: str,
    digits: dict[str, int],
) -> ReconciliationBreak:
    c = candidate
    first = c.targets[0] if c.targets else None
    currency = (c.source.currency if c.source else "") or (first.currency if first else "")
    source_amount = c.source.amount if c.source else None
    if c.kind == "duplicate":
        target_amount = sum(t.amount or 0 for t in c.targets) if pair.money else None
    else:
        target_amount = first.amount if first else None
    amount = source_amount if source_amount is not None else target_amount
    difference = None
    if pair.money:
        difference = _money((target_amount or 0) - (source_amount or 0), currency, digits)
    detail = {
        "key": c.key,
        "source": None if c.source is None else _side(c.source, currency, digits),
        "target": [_side(t, currency, digits) for t in c.targets],
    }
    return ReconciliationBreak(
        run=run,
        pair=pair.name,
        kind=c.kind,
        record_key=f"recon:{pair.name}:{c.key}:{c.kind}"[:255],
        source_external_id=c.source.external_id if c.source else "",
        target_external_ids=[t.external_id for t in c.targets],
        amount=_money(amount, currency, digits) if pair.money else None,
        currency=currency if pair.money else "",
        difference=difference,
        period=c.period or "",
        legal_entity_id=c.legal_entity_id,
        project_id=c.project_id,
        explained=bool(explanation),
        explanation=explanation,
        detail=detail,
    )


def _side(side: Any, currency: str, digits: dict[str, int]) -> dict[str, Any]:
    return {
        "external_id": side.external_id,
        "status": side.status,
        "quantity": None if side.quantity is None else str(from_minor(side.quantity, digits=2)),
        "amount": None
        if side.amount is None
        else str(from_minor(side.amount, digits=digits.get(side.currency or currency, 2))),
        "currency": side.currency,
    }


def reconciliation_after_cycle(
    *, sync_run: SyncRun, transport_for: Callable[[Connection], Any] | None = None
) -> ReconciliationRun | None:
    """Reconcile what one sync cycle touched: the time pair when it changed time entries,
    delivered or pulled anything, for the one month whose entries changed (every month when
    several did, or when only pulled records changed); the worker pairs when workers changed or
    anything was pulled. None when the cycle touched nothing."""
    since = sync_run.started_at
    months = list(TimeEntry.objects.filter(updated_at__gte=since).dates("work_date", "month"))
    workers = Worker.objects.filter(updated_at__gte=since).exists()
    pulled = sync_run.pulled > 0
    names = []
    if months or pulled or sync_run.delivered:
        names.append(time_bills.NAME)
    if workers or pulled:
        names += [workers_pairs.ERP_PAIR.name, workers_pairs.PSA_PAIR.name]
    if not names:
        return None
    period = months[0].strftime("%Y-%m") if len(months) == 1 else ""
    return reconciliation_run(
        trigger=ReconciliationRun.Trigger.CYCLE,
        pairs=names,
        period=period,
        sync_run=sync_run,
        transport_for=transport_for,
    )
