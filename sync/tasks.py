"""Celery tasks of the sync engine: thin interfaces over the outbox and delivery services."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict

from celery import shared_task
from django.conf import settings
from django.utils import timezone

# Services and models are imported inside the tasks: portal/celery.py imports this module for
# `beat_schedule_delivery` when the Celery app finalizes, possibly before Django's app registry
# is ready (importing models then raises AppRegistryNotReady).

logger = logging.getLogger(__name__)

# One send task claims deliveries for up to SEND_SECONDS (and SEND_BATCH at most), a few dozen
# at a time, while the ones claimed before are in flight: a backlog flows at the target's limit
# without the pause a task's start and end would put between small batches (the OAuth token is
# cached per process, see sync/connectors/auth.py). It ends well inside the soft time limit:
# SEND_SECONDS plus the slowest request in hand (its timeout). A task that ran out of time with
# work left enqueues its successor at once (no gap until the next sweep); the sweep fans out
# more tasks, one per SEND_BATCH due, and tasks on one connection share its in-flight budget
# (a task that gets no slot gives its claims back within a second, freeing its worker).
SEND_BATCH = 5000
SEND_SECONDS = 15.0
# Send tasks one sweep enqueues at most (a beat tick every DELIVERY_SWEEP_SECONDS).
SWEEP_FAN_OUT = 10
DELIVERY_SWEEP_SECONDS = 2.0
# A send task nobody picked up within this long is dropped by the worker that finally gets it:
# the next sweep enqueues fresh ones for whatever is still due, so a backlog of stale messages
# (after an outage, or a message redelivered after its worker was killed) never piles up.
SEND_EXPIRES_SECONDS = 20.0
# Never above the global hard limit: outbox.claims.IN_FLIGHT_TIMEOUT is twice that global
# limit, so a batch still being sent by a live worker is never reclaimed from under it.
SEND_SOFT_TIME_LIMIT = min(120, settings.CELERY_TASK_SOFT_TIME_LIMIT)
SEND_TIME_LIMIT = min(150, settings.CELERY_TASK_TIME_LIMIT)
# How old the queue cards' and groups' counts get at most while beat runs (plus one refresh).
EXCEPTION_SUMMARY_SECONDS = 15.0


@shared_task(
    name="sync.deliveries_send_due",
    # Redelivered if the worker dies mid-batch. Safe: each send is an upsert by external id
    # (a resend updates the same target record) and outcomes are recorded only under the claim
    # token, so a late or repeated run cannot move a row another claim owns. The rows the dead
    # worker claimed wait in flight until deliveries_sweep reclaims them. A message that kills
    # its worker every time would come back for ever: the sweep sends them with an expiry.
    acks_late=True,
    reject_on_worker_lost=True,
    # Not retried by Celery: a retry would need a countdown, and posting tasks have none. A run
    # that fails leaves its rows pending or in flight; the next sweep sends them.
    max_retries=0,
    soft_time_limit=SEND_SOFT_TIME_LIMIT,
    time_limit=SEND_TIME_LIMIT,
)
def deliveries_send_due(
    *, limit: int = SEND_BATCH, seconds: float = SEND_SECONDS
) -> dict[str, int]:
    """Claim up to `limit` due deliveries, for `seconds` at most, and send them; returns the
    counts (claimed, delivered, retrying, failed). Idempotent; safe in any number of workers."""
    from sync.pipeline.delivery import deliveries_send_due as deliveries_send_due_service

    started = time.monotonic()
    counts = deliveries_send_due_service(limit=limit, seconds=seconds)
    if (
        counts.claimed
        and counts.claimed < limit
        and time.monotonic() - started >= seconds
        and _deliveries_due_count(cap=1)
    ):
        deliveries_send_due.apply_async(
            kwargs={"limit": limit, "seconds": seconds}, expires=SEND_EXPIRES_SECONDS
        )
    return asdict(counts)


@shared_task(
    name="sync.deliveries_sweep",
    # Acked on receipt: a sweep lost with its worker is redone by the next beat tick, seconds
    # later, so redelivering it would only add a duplicate fan-out.
    max_retries=0,
    soft_time_limit=30,
    time_limit=45,
)
def deliveries_sweep(*, fan_out: int = SWEEP_FAN_OUT, limit: int = SEND_BATCH) -> dict[str, int]:
    """Put deliveries stuck in flight (their worker died) back to pending, then enqueue up to
    `fan_out` send tasks of `limit` deliveries each while due deliveries exist.

    Returns {"reclaimed", "due", "enqueued"}; `due` is counted up to fan_out * limit. Run by
    beat every DELIVERY_SWEEP_SECONDS; idempotent (an extra send task claims nothing).
    """
    from sync.pipeline.outbox.claims import deliveries_reclaim_stuck

    reclaimed = deliveries_reclaim_stuck()
    due = _deliveries_due_count(cap=fan_out * limit)
    enqueued = min(fan_out, math.ceil(due / limit))
    for _ in range(enqueued):
        deliveries_send_due.apply_async(kwargs={"limit": limit}, expires=SEND_EXPIRES_SECONDS)
    if reclaimed:
        logger.warning("deliveries_sweep reclaimed %d deliveries stuck in flight", reclaimed)
    return {"reclaimed": reclaimed, "due": due, "enqueued": enqueued}


def _deliveries_due_count(*, cap: int) -> int:
    """Pending deliveries whose next attempt is due, counted up to `cap` (index delivery_pending).

    A read the sweep needs to size its fan-out; it belongs with the outbox selectors once
    sync.pipeline has a selectors module.
    """
    from sync.pipeline.models import Delivery
    from sync.pipeline.outbox.claims import connections_sending_ids

    now = timezone.now()
    # Active connections only: a disabled connection's backlog enqueues no task.
    due = Delivery.objects.filter(
        connection_id__in=connections_sending_ids(now=now),
        state=Delivery.State.PENDING,
        next_attempt_at__lte=now,
    ).values("id")[:cap]
    return Delivery.objects.filter(id__in=due).count()


@shared_task(name="sync.metrics_totals_refresh", ignore_result=True)
def metrics_totals_refresh() -> None:
    """Recompute /metrics' whole-table totals into the cache, so scrapes only read them."""
    from sync.pipeline.metrics import metrics_totals_refresh as refresh

    refresh()


@shared_task(
    name="sync.exception_summary_refresh",
    ignore_result=True,
    # Acked on receipt and never retried: beat runs it again within EXCEPTION_SUMMARY_SECONDS.
    max_retries=0,
    soft_time_limit=60,
    time_limit=90,
)
def exception_summary_refresh_task() -> dict:
    """Recompute the exception summary the queue cards and groups read (idempotent)."""
    from sync.pipeline.exception_summary import (
        exception_summary_pending_forget,
        exception_summary_refresh,
    )

    exception_summary_pending_forget()
    done = exception_summary_refresh()
    return {"rows": done.rows, "days": done.days, "took_ms": done.took_ms}


def beat_schedule_exceptions() -> dict:
    """Beat entry of the exception summary, to merge into portal/celery.py's schedule."""
    return {
        "sync-exception-summary": {
            "task": "sync.exception_summary_refresh",
            "schedule": EXCEPTION_SUMMARY_SECONDS,
            # A refresh that waited a whole interval is superseded by the next one.
            "options": {"expires": EXCEPTION_SUMMARY_SECONDS},
        },
    }


def beat_schedule_delivery() -> dict:
    """Beat entries of the delivery engine, to merge into portal/celery.py's schedule."""
    return {
        "sync-deliveries-sweep": {
            "task": "sync.deliveries_sweep",
            "schedule": DELIVERY_SWEEP_SECONDS,
            # A sweep that waited longer than one tick is superseded by the next one.
            "options": {"expires": DELIVERY_SWEEP_SECONDS},
        },
        # Every half interval: a scrape finds totals younger than METRICS_TOTALS_SECONDS.
        "sync-metrics-totals": {
            "task": "sync.metrics_totals_refresh",
            "schedule": settings.METRICS_TOTALS_SECONDS / 2,
            "options": {"expires": settings.METRICS_TOTALS_SECONDS / 2},
        },
    }
