"""Keeping the exception queues in step with a run's breaks (service).

- A new unexplained break opens an exception item in its pair's queue, keyed by the break's
  `record_key` (stage "deliver": what the target holds disagrees with what was sent), with the
  money at risk and the pair's suggested fix. Idempotent per record key: the next run that finds
  the same break adds an occurrence to the open item instead of a second one.
- Where replay is the fix (a record the target lost or altered, that Ledgerbridge delivered),
  the item carries that delivery, set back to failed, so the queue's one-click retry sends it
  again under its idempotency key and external id (an upsert: it cannot create a second one).
- An open item whose break the run no longer finds, within the run's scope, is resolved.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType

from reconciliation.compare import Candidate
from reconciliation.models import BreakKind, ReconciliationBreak, ReconciliationRun
from reconciliation.pairs.base import Pair, Scope
from sync.audit import acting_as
from sync.pipeline.exception_items import Failure, exception_items_close_for, exception_items_raise
from sync.pipeline.models import Delivery, ExceptionItem
from sync.pipeline.models.exception_items import Stage

STAGE = Stage.DELIVER
REPLAYABLE = frozenset({BreakKind.MISSING_IN_TARGET, BreakKind.AMOUNT_MISMATCH})


def _at_risk(b: ReconciliationBreak) -> Decimal | None:
    if b.amount is None:
        return None
    if b.kind in (BreakKind.AMOUNT_MISMATCH, BreakKind.DUPLICATE) and b.difference is not None:
        return abs(b.difference)
    return abs(b.amount)


def _message(pair: Pair, b: ReconciliationBreak) -> str:
    source = b.source_external_id or "none"
    targets = ", ".join(b.target_external_ids) or "none"
    text = f"{pair.label}: {b.get_kind_display().lower()}. Source {source}; target {targets}."
    if b.amount is not None:
        text += f" Amount {b.amount} {b.currency}"
        if b.kind in (BreakKind.AMOUNT_MISMATCH, BreakKind.DUPLICATE):
            text += f", difference {b.difference} {b.currency}"
        text += "."
    return text


def _replay_deliveries(
    *, pair: Pair, pairs: list[tuple[ReconciliationBreak, Candidate]], run: ReconciliationRun
) -> dict[int, int]:
    """{record id: its latest delivered (or already re-failed) delivery}, set back to failed so
    that the item's retry sends it again. One query to find, one to update."""
    if pair.delivery_model is None:
        return {}
    ids = [str(c.record_id) for b, c in pairs if b.kind in REPLAYABLE and c.record_id is not None]
    if not ids:
        return {}
    latest: dict[int, int] = {}
    for object_id, pk in (
        Delivery.objects.filter(
            content_type=ContentType.objects.get_for_model(pair.delivery_model),
            object_id__in=ids,
            state__in=(Delivery.State.DELIVERED, Delivery.State.FAILED),
        )
        .order_by("object_id", "-record_version", "-pk")
        .values_list("object_id", "pk")
    ):
        latest.setdefault(int(object_id), pk)
    # Conditional: only a delivery still recorded as delivered moves; the target has lost or
    # changed what it received, which is what "failed" means to the retry action.
    Delivery.objects.filter(pk__in=list(latest.values()), state=Delivery.State.DELIVERED).update(
        state=Delivery.State.FAILED,
        last_error=f"Reconciliation run {run.pk}: the target no longer holds what was delivered.",
    )
    return latest


def _in_scope(detail: dict[str, Any], scope: Scope) -> bool:
    if scope.period and detail.get("period") != scope.period:
        return False
    if scope.legal_entity_id is not None and detail.get("legal_entity_id") != scope.legal_entity_id:
        return False
    return scope.project_id is None or detail.get("project_id") == scope.project_id


def break_items_sync(
    *,
    run: ReconciliationRun,
    pair: Pair,
    scope: Scope,
    breaks: list[ReconciliationBreak],
    candidates: list[Candidate],
) -> None:
    """Raise items for the unexplained breaks, link them, resolve the items of vanished breaks.
    A fixed number of queries whatever the number of breaks; call inside a transaction."""
    unexplained = [(b, c) for b, c in zip(breaks, candidates, strict=True) if not b.explained]
    replay = _replay_deliveries(pair=pair, pairs=unexplained, run=run)
    failures = [
        Failure(
            record_key=b.record_key,
            stage=STAGE,
            queue=pair.queue,
            code=f"RECON_{b.kind.upper()}",
            category="business",
            message=_message(pair, b),
            suggested_fix=pair.fixes.get(b.kind, ""),
            cause=f"{pair.name}:{b.kind}",
            detail={
                "reconciliation_run": run.pk,
                "pair": pair.name,
                "kind": b.kind,
                "source_external_id": b.source_external_id,
                "target_external_ids": b.target_external_ids,
                "period": b.period,
                "legal_entity_id": b.legal_entity_id,
                "project_id": b.project_id,
            },
            money_at_risk=_at_risk(b),
            currency=b.currency,
            delivery_id=replay.get(c.record_id) if b.kind in REPLAYABLE else None,
        )
        for b, c in unexplained
    ]
    with acting_as(f"reconciliation:{run.pk}"):
        items = {i.record_key: i for i in exception_items_raise(failures=failures)}
        for b, _ in unexplained:
            b.exception_item = items.get(b.record_key)
        ReconciliationBreak.objects.bulk_update(
            [b for b, _ in unexplained if b.exception_item is not None],
            ["exception_item"],
            batch_size=1000,
        )
        found = {b.record_key for b in breaks}
        vanished = [
            key
            for key, detail in ExceptionItem.objects.filter(
                record_key__startswith=f"recon:{pair.name}:",
                stage=STAGE,
                status__in=ExceptionItem.OPEN_STATUSES,
            ).values_list("record_key", "detail")
            if key not in found and _in_scope(detail or {}, scope)
        ]
        if vanished:
            exception_items_close_for(
                record_keys=vanished,
                stage=STAGE,
                reason=f"Reconciliation run {run.pk} no longer finds this difference.",
            )
