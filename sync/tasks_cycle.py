"""Celery tasks of the sync cycle: thin interfaces over sync.pipeline.cycle.

Registered by importing this module (SyncConfig.ready imports it; Celery's autodiscovery only
looks at `sync/tasks.py`). Beat runs one `sync.cycle_run` per enabled connection every
`Connection.pull_interval_seconds` (`beat_schedule_sync`, merged into portal/celery.py).
"""

from __future__ import annotations

import logging

import django
from celery import shared_task
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

# No model imports at module level: portal/celery.py imports this module for its beat
# schedule when the Celery app finalizes, possibly before Django's app registry is ready.

logger = logging.getLogger(__name__)

# A cycle pulls pages, processes batches and sends deliveries: give it the global limits.
CYCLE_SOFT_TIME_LIMIT = settings.CELERY_TASK_SOFT_TIME_LIMIT
CYCLE_TIME_LIMIT = settings.CELERY_TASK_TIME_LIMIT
CYCLE_MAX_RETRIES = 3
# Retried: the database went away or was locked (SQLite "database is locked", a PostgreSQL
# fail-over). Vendor failures are not listed: the cycle records them on its SyncRun, and the
# next beat tick pulls again from the committed position.
RETRY_ON = (OperationalError, InterfaceError)
AFTER_CYCLE_TASK = "reconciliation.after_cycle"


@shared_task(
    name="sync.cycle_run",
    bind=True,
    # Acked on receipt: a cycle lost with its worker is redone by the next beat tick, and every
    # step is idempotent, so a redelivered copy would only run a second cycle alongside.
    autoretry_for=RETRY_ON,
    max_retries=CYCLE_MAX_RETRIES,
    retry_backoff=5,
    retry_backoff_max=120,
    retry_jitter=True,
    soft_time_limit=CYCLE_SOFT_TIME_LIMIT,
    time_limit=CYCLE_TIME_LIMIT,
)
def cycle_run(self, *, connection_ids: list[int] | None = None) -> dict | None:
    """Run one sync cycle over the given enabled connections (all enabled ones when None).

    Returns the run's id, status and counts, or None when none of the connections exists or
    is enabled any more (the beat entry outlived its connection).
    """
    from sync.pipeline.cycle import sync_cycle_run
    from sync.pipeline.models import Connection

    connections = None
    if connection_ids is not None:
        connections = list(Connection.objects.filter(id__in=connection_ids, enabled=True))
        if not connections:
            logger.info("cycle_run: connections %s are gone or disabled", connection_ids)
            return None
    run = sync_cycle_run(connections=connections)
    if run.created or run.updated or run.unchanged or run.delivered:
        # Reconciliation follows every cycle that processed or delivered something
        # (docs/reconciliation.md); a pull that only re-read records it already held (an
        # inclusive cursor re-reads the last second's records) is not a change.
        # Sent by name: sync never imports reconciliation (the layers in pyproject.toml).
        self.app.signature(AFTER_CYCLE_TASK, kwargs={"sync_run_id": run.pk}).apply_async()
    if run.failed or run.refused or run.created or run.updated:
        # Items were raised or closed: the queue cards and groups count them soon after.
        from sync.pipeline.exception_summary import exception_summary_refresh_soon

        exception_summary_refresh_soon()
    return {
        "run_id": run.pk,
        "status": run.status,
        "pulled": run.pulled,
        "created": run.created,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "refused": run.refused,
        "failed": run.failed,
        "delivered": run.delivered,
    }


def beat_schedule_sync() -> dict:
    """One beat entry per enabled connection: `sync.cycle_run` for it every
    `pull_interval_seconds`. Read from the database when beat starts (restart beat after adding
    a connection or changing its interval); an unmigrated database gives no entries rather
    than stopping beat."""
    if not apps.ready:
        # Celery reads the schedule when its app finalizes, which can come before its Django
        # fixup has set Django up; the connections table needs the app registry.
        django.setup()
    from sync.pipeline.models import Connection
    from sync.pipeline.pull import pull_entities

    try:
        connections = list(Connection.objects.filter(enabled=True).order_by("name"))
    except DatabaseError as exc:
        logger.warning("no sync cycle schedule: connections cannot be read (%s)", exc)
        return {}
    schedule = {}
    for connection in connections:
        if not pull_entities(connection):
            continue  # nothing to pull on a timer (CSV drops arrive as files)
        interval = float(connection.pull_interval_seconds)
        schedule[f"sync-cycle-{connection.name}"] = {
            "task": "sync.cycle_run",
            "schedule": interval,
            "kwargs": {"connection_ids": [connection.pk]},
            # A cycle that waited a whole interval is superseded by the next tick.
            "options": {"expires": interval},
        }
    return schedule
