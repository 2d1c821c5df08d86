"""Which differences are already explained, and why (docs/reconciliation.md, "Explained").

A difference is explained, in this order, by: an open exception item of the pipeline for the
record on either side or for one of its deliveries (the queue already holds it); a delivery of
the record not yet delivered (pending or in flight: the target will hold it shortly); the
source record approved after the run's cut-off (its start). Items reconciliation raised itself
(`recon:` keys) explain nothing. A fixed number of queries per pair, whatever the number of
differences.
"""

from __future__ import annotations

import datetime as dt

from django.contrib.contenttypes.models import ContentType

from reconciliation.compare import Candidate
from reconciliation.models import BreakKind
from reconciliation.pairs.base import Pair
from sync.pipeline.models import Delivery, ExceptionItem

RECON_PREFIX = "recon:"
IN_FLIGHT = (Delivery.State.PENDING, Delivery.State.IN_FLIGHT)
# A delivery on its way or a late approval can only account for what the target lacks or
# has not updated yet; a duplicate or an extra target record is never explained by them.
PENDING_KINDS = frozenset(
    {BreakKind.MISSING_IN_TARGET, BreakKind.AMOUNT_MISMATCH, BreakKind.STATUS_MISMATCH}
)


def explanations_find(*, pair: Pair, candidates: list[Candidate], cutoff: dt.datetime) -> list[str]:
    """One explanation per candidate ("" when nothing explains it), in the same order."""
    if not candidates:
        return []
    explainings = pair.explaining(
        [
            (c.source.external_id if c.source else "", [t.external_id for t in c.targets])
            for c in candidates
        ]
    )
    keys = {key for e in explainings for key in e.record_keys}
    items = {
        key: (pk, code, queue)
        for key, pk, code, queue in ExceptionItem.objects.filter(
            record_key__in=list(keys), status__in=ExceptionItem.OPEN_STATUSES
        )
        .exclude(record_key__startswith=RECON_PREFIX)
        .order_by("pk")
        .values_list("record_key", "pk", "code", "queue")
    }
    in_flight = _deliveries_in_flight(pair=pair, candidates=candidates)
    delivery_items = _delivery_items(pair=pair, candidates=candidates)
    found = []
    for candidate, explaining in zip(candidates, explainings, strict=True):
        reason = ""
        for key in explaining.record_keys:
            if key in items:
                pk, code, queue = items[key]
                reason = f"open exception item {pk} ({code}, queue {queue}) for {key}"
                break
        if not reason and candidate.record_id in delivery_items:
            pk, code, queue = delivery_items[candidate.record_id]
            reason = f"open exception item {pk} ({code}, queue {queue}) for its delivery"
        if not reason and candidate.kind in PENDING_KINDS:
            delivery = in_flight.get(candidate.record_id)
            if delivery is not None:
                reason = f"delivery {delivery[0]} is {delivery[1]}: not yet delivered to the target"
            elif candidate.approved_at is not None and candidate.approved_at >= cutoff:
                reason = (
                    f"approved at {candidate.approved_at.isoformat()}, after the run's "
                    f"cut-off {cutoff.isoformat()}"
                )
        found.append(reason)
    return found


def _delivery_items(*, pair: Pair, candidates: list[Candidate]) -> dict[int, tuple[int, str, str]]:
    """{canonical record id: an open pipeline item about one of its deliveries}."""
    ids = [str(c.record_id) for c in candidates if c.record_id is not None]
    if pair.delivery_model is None or not ids:
        return {}
    return {
        int(object_id): (pk, code, queue)
        for object_id, pk, code, queue in ExceptionItem.objects.filter(
            delivery__content_type=ContentType.objects.get_for_model(pair.delivery_model),
            delivery__object_id__in=ids,
            status__in=ExceptionItem.OPEN_STATUSES,
        )
        .exclude(record_key__startswith=RECON_PREFIX)
        .order_by("-pk")
        .values_list("delivery__object_id", "pk", "code", "queue")
    }


def _deliveries_in_flight(*, pair: Pair, candidates: list[Candidate]) -> dict[int, tuple[int, str]]:
    """{canonical record id: (delivery id, state)} of deliveries not yet delivered."""
    ids = [str(c.record_id) for c in candidates if c.record_id is not None]
    if pair.delivery_model is None or not ids:
        return {}
    return {
        int(object_id): (pk, state)
        for object_id, pk, state in Delivery.objects.filter(
            content_type=ContentType.objects.get_for_model(pair.delivery_model),
            object_id__in=ids,
            state__in=IN_FLIGHT,
        )
        .order_by("pk")
        .values_list("object_id", "pk", "state")
    }
