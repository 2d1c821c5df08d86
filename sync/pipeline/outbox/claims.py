"""Putting deliveries on the outbox and taking them off: enqueue, claim, unclaim, reclaim, retry.

Each claim moves rows pending → in_flight under its own token, so no two workers send the same
row; what a send came to is recorded by `outbox.outcomes`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from sync.pipeline.models import Connection, Delivery
from sync.pipeline.outbox.outcomes import INDETERMINATE, Outcome, delivery_outcome_record
from sync.pipeline.retry import MAX_ATTEMPTS

# A delivery in flight longer than this was lost with its worker: put it back. Twice the hard
# task time limit, so a live worker's send is never taken from under it.
IN_FLIGHT_TIMEOUT = timedelta(seconds=2 * settings.CELERY_TASK_TIME_LIMIT)


def deliveries_enqueue(*, deliveries: Sequence[Delivery]) -> int:
    """Insert deliveries, skipping any whose idempotency key exists. Returns how many are new.

    Call inside the transaction that upserts the records, so both commit or neither does.
    """
    if not deliveries:
        return 0
    keys = [d.idempotency_key for d in deliveries]
    before = set(
        Delivery.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", flat=True)
    )
    Delivery.objects.bulk_create(deliveries, batch_size=2000, ignore_conflicts=True)
    return len(set(keys) - before)


def connections_sending_ids(*, now: datetime) -> list[int]:
    """Ids of the connections deliveries may be sent to now: enabled, circuit closed."""
    return list(
        Connection.objects.filter(enabled=True)
        .exclude(circuit_open_until__gt=now)
        .order_by("id")
        .values_list("id", flat=True)
    )


def deliveries_claim(
    *,
    limit: int,
    now: datetime | None = None,
    connection_ids: Sequence[int] | None = None,
    delivery_ids: Sequence[int] | None = None,
) -> list[Delivery]:
    """Claim up to `limit` due deliveries for this worker. Safe under any number of workers.

    Rows are locked with `select_for_update(skip_locked=True)` (on SQLite, which has no row
    locks, the IMMEDIATE transaction serialises claimers) and moved to in_flight with their
    attempt counted before the lock is released, so no two workers send the same row.
    Connections that are disabled or whose circuit is open are skipped. `delivery_ids`
    narrows the claim to those rows (each still only if pending and due).

    Each active connection's due rows are read from its own range of the `delivery_pending`
    index, up to `limit` each, and the earliest due of them all are claimed (the others'
    locks end with the transaction): a backlog held for a disabled connection costs a claim
    nothing (reading past it in one due-ordered index took ~0.1 s a claim at 200,000 rows).
    """
    now = now or timezone.now()
    active = connections_sending_ids(now=now)
    if connection_ids is not None:
        wanted = set(connection_ids)
        active = [c for c in active if c in wanted]
    with transaction.atomic():
        candidates: list[Delivery] = []
        for connection_id in active:
            due = Delivery.objects.select_for_update(skip_locked=True).filter(
                connection_id=connection_id,
                state=Delivery.State.PENDING,
                next_attempt_at__lte=now,
            )
            if delivery_ids is not None:
                due = due.filter(id__in=list(delivery_ids))
            candidates += due.order_by("next_attempt_at", "id")[:limit]
        claimed = sorted(candidates, key=lambda d: (d.next_attempt_at, d.id))[:limit]
        if not claimed:
            return []
        token = uuid.uuid4()
        Delivery.objects.filter(id__in=[d.id for d in claimed]).update(
            state=Delivery.State.IN_FLIGHT,
            in_flight_since=now,
            attempts=F("attempts") + 1,
            claim_token=token,
        )
    for delivery in claimed:
        delivery.state = Delivery.State.IN_FLIGHT
        delivery.in_flight_since = now
        delivery.attempts += 1
        delivery.claim_token = token
    return claimed


def deliveries_unclaim(*, deliveries: Sequence[Delivery]) -> int:
    """Give claimed deliveries that were never sent back to pending, their attempt uncounted.

    Only rows still in flight under their own claim token change (a row reclaimed by the
    sweeper and claimed by another worker meanwhile is left alone). Returns how many changed.
    """
    by_token: dict[Any, list[int]] = {}
    for delivery in deliveries:
        by_token.setdefault(delivery.claim_token, []).append(delivery.id)
    changed = 0
    for token, ids in by_token.items():
        changed += Delivery.objects.filter(
            id__in=ids, state=Delivery.State.IN_FLIGHT, claim_token=token
        ).update(
            state=Delivery.State.PENDING,
            in_flight_since=None,
            claim_token=None,
            attempts=F("attempts") - 1,
        )
    return changed


def deliveries_reclaim_stuck(
    *, now: datetime | None = None, older_than: timedelta = IN_FLIGHT_TIMEOUT
) -> int:
    """Put deliveries whose worker vanished mid-send back to pending. Returns how many.

    The attempt already counted stays counted; the next sender resolves the possibly-written
    record by upserting by external id (or looking it up) before writing again. A delivery
    that has used its whole attempt budget this way fails with an exception item (the write
    may or may not have happened: integration ops check the target).
    """
    now = now or timezone.now()
    stuck = Delivery.objects.filter(
        state=Delivery.State.IN_FLIGHT, in_flight_since__lt=now - older_than
    )
    for delivery in stuck.filter(attempts__gte=MAX_ATTEMPTS):
        delivery_outcome_record(
            delivery=delivery,
            now=now,
            outcome=Outcome(
                ok=False,
                kind=INDETERMINATE,
                message=f"the worker was lost mid-send {delivery.attempts} times",
            ),
        )
    return stuck.filter(attempts__lt=MAX_ATTEMPTS).update(
        state=Delivery.State.PENDING, in_flight_since=None, claim_token=None, next_attempt_at=now
    )


def delivery_retry(*, delivery: Delivery, now: datetime | None = None) -> Delivery:
    """Send a failed delivery again from a person's action (the attempt budget starts over)."""
    now = now or timezone.now()
    changed = Delivery.objects.filter(id=delivery.id, state=Delivery.State.FAILED).update(
        state=Delivery.State.PENDING, attempts=0, next_attempt_at=now, last_error=""
    )
    if not changed:
        raise ValueError(f"Delivery {delivery.id} is {delivery.state}, not failed.")
    delivery.refresh_from_db()
    return delivery
