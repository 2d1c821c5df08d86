"""Reconciliation's Celery tasks: thin, named, bounded."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.schedules import crontab
from django.conf import settings
from django.db import InterfaceError, OperationalError

from reconciliation.rollup import ROLLUP_SECONDS, time_rollup_refresh
from reconciliation.services import kpi_snapshot_take

logger = logging.getLogger(__name__)

KPI_SNAPSHOT_SECONDS = 3600
# Nightly, in full: after the day's last cycles, before people start (UTC).
NIGHTLY = {"hour": 2, "minute": 30}
RETRY_ON = (OperationalError, InterfaceError)


@shared_task(name="reconciliation.kpi_snapshot_take", ignore_result=True)
def kpi_snapshot_task() -> None:
    from sync.connectors.stats import redis_client

    kpi_snapshot_take(redis=redis_client())


@shared_task(name="reconciliation.time_rollup_refresh", ignore_result=True)
def time_rollup_task() -> None:
    time_rollup_refresh()


@shared_task(
    name="reconciliation.after_cycle",
    ignore_result=True,
    autoretry_for=RETRY_ON,
    max_retries=3,
    retry_backoff=5,
    retry_jitter=True,
    soft_time_limit=settings.CELERY_TASK_SOFT_TIME_LIMIT,
    time_limit=settings.CELERY_TASK_TIME_LIMIT,
)
def reconcile_after_cycle(*, sync_run_id: int) -> int | None:
    """Reconcile what sync run `sync_run_id` touched; returns the reconciliation run's id, or
    None when the sync run is gone or touched nothing."""
    from reconciliation.runs import reconciliation_after_cycle
    from sync.pipeline.models import SyncRun

    sync_run = SyncRun.objects.filter(pk=sync_run_id).first()
    if sync_run is None:
        logger.info("reconcile_after_cycle: sync run %s is gone", sync_run_id)
        return None
    run = reconciliation_after_cycle(sync_run=sync_run)
    return None if run is None else run.pk


@shared_task(
    name="reconciliation.nightly",
    ignore_result=True,
    autoretry_for=RETRY_ON,
    max_retries=3,
    retry_backoff=60,
    retry_jitter=True,
    # A full run reads every time bill through the ERP's API: give it an hour.
    soft_time_limit=3300,
    time_limit=3600,
)
def reconcile_nightly() -> int:
    """Reconcile every pair over every period; returns the run's id."""
    from reconciliation.models import ReconciliationRun
    from reconciliation.runs import reconciliation_run

    return reconciliation_run(trigger=ReconciliationRun.Trigger.NIGHTLY).pk


def beat_schedule_reconciliation() -> dict:
    """Beat entries of reconciliation, to merge into portal/celery.py's schedule."""
    return {
        "reconciliation-kpi-snapshot": {
            "task": "reconciliation.kpi_snapshot_take",
            "schedule": KPI_SNAPSHOT_SECONDS,
            "options": {"expires": KPI_SNAPSHOT_SECONDS},
        },
        "reconciliation-time-rollup": {
            "task": "reconciliation.time_rollup_refresh",
            "schedule": ROLLUP_SECONDS,
            "options": {"expires": ROLLUP_SECONDS},
        },
        "reconciliation-nightly": {
            "task": "reconciliation.nightly",
            "schedule": crontab(**NIGHTLY),
        },
    }
