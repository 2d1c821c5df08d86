"""Celery tasks of the event path: thin interfaces over sync.pipeline.approval_events.

The PSA webhook view (sync/webhooks.py) enqueues `sync.approval_event_process` once the event
it stored has committed. Registered by importing this module (SyncConfig.ready imports it;
Celery's autodiscovery only looks at `sync/tasks.py`).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

# No model imports at module level (as in sync/tasks_cycle.py): this module may be imported
# before Django's app registry is ready.

logger = logging.getLogger(__name__)

# One event: a PSA read, one small batch of time posting and a few ERP writes. Never above the
# global limits: outbox.claims.IN_FLIGHT_TIMEOUT is twice the global hard limit, so a delivery this
# task still sends is never reclaimed from under it.
EVENT_SOFT_TIME_LIMIT = min(60, settings.CELERY_TASK_SOFT_TIME_LIMIT)
EVENT_TIME_LIMIT = min(90, settings.CELERY_TASK_TIME_LIMIT)


@shared_task(
    name="sync.approval_event_process",
    # Redelivered if the worker dies mid-event. Safe: the event is claimed by its pending
    # status under a row lock and processed in one transaction with its time posting, so a
    # second run finds it processed and does nothing; a delivery it had claimed is reclaimed by
    # the sweep and resent as an upsert by external id.
    acks_late=True,
    reject_on_worker_lost=True,
    # Not retried by Celery (posting tasks take no countdown): a run that fails leaves the
    # event pending and the next sync cycle processes it; pending deliveries go with the sweep.
    max_retries=0,
    # Nobody waits for the result (the run records it), and a result backend that is down must
    # not hold up the webhook that enqueues this.
    ignore_result=True,
    soft_time_limit=EVENT_SOFT_TIME_LIMIT,
    time_limit=EVENT_TIME_LIMIT,
)
def approval_event_process(*, inbox_item_id: int) -> dict | None:
    """Process one stored PSA approval event (with the events waiting beside it, in one batch)
    and send their ERP postings now.

    Returns the run's id, status and counts, or None when the event is gone or no longer
    pending (another task's batch or the cycle got there first, or this message was delivered
    twice).
    """
    from sync.pipeline.approval_events import approval_event_post_now

    result = approval_event_post_now(inbox_item_id=inbox_item_id)
    if result is None:
        logger.info("approval_event_process: event %s is gone or already processed", inbox_item_id)
    return result
