"""Reconciliation's Celery tasks: thin, named, bounded."""

from __future__ import annotations

from celery import shared_task

from reconciliation.rollup import ROLLUP_SECONDS, time_rollup_refresh
from reconciliation.services import kpi_snapshot_take

KPI_SNAPSHOT_SECONDS = 3600


@shared_task(name="reconciliation.kpi_snapshot_take", ignore_result=True)
def kpi_snapshot_task() -> None:
    from sync.connectors.stats import redis_client

    kpi_snapshot_take(redis=redis_client())


@shared_task(name="reconciliation.time_rollup_refresh", ignore_result=True)
def time_rollup_task() -> None:
    time_rollup_refresh()


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
    }
