"""The Celery app: JSON only, bounded tasks, explicit task names, beat schedule in code."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

from celery import Celery
from celery.signals import after_setup_logger, before_task_publish

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("ledgerbridge")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _beat_schedule() -> dict:
    from django.conf import settings

    from reconciliation.tasks import beat_schedule_reconciliation
    from sync.tasks import beat_schedule_delivery, beat_schedule_exceptions
    from sync.tasks_cycle import beat_schedule_sync

    interval = float(settings.HEARTBEAT_INTERVAL_SECONDS)
    return {
        "portal-heartbeat": {
            "task": "portal.heartbeat",
            "schedule": interval,
            # A heartbeat nobody ran in time is worthless later: let it expire.
            "options": {"expires": interval},
        },
        **beat_schedule_sync(),
        **beat_schedule_delivery(),
        **beat_schedule_exceptions(),
        **beat_schedule_reconciliation(),
    }


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **kwargs) -> None:
    sender.conf.beat_schedule = _beat_schedule()


@before_task_publish.connect
def _stamp_publish_time(headers: dict | None = None, **kwargs) -> None:
    """Stamp every message with its publish time, so workers can measure queue latency."""
    if headers is not None:
        headers.setdefault("lb_sent_at", datetime.now(UTC).isoformat())


# Tasks beat sends every few seconds: their "received", "succeeded" and "sending due task"
# lines are DEBUG, so that a terminal running `make run` shows what people did, not the clock.
ROUTINE_TASKS = (
    "sync.deliveries_sweep",
    "sync.deliveries_send_due",
    "sync.metrics_totals_refresh",
    "sync.exception_summary_refresh",
    "portal.heartbeat",
)
CHATTY_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


class RoutineTasksAtDebug(logging.Filter):
    """Drops INFO lines about ROUTINE_TASKS unless the logger shows DEBUG; failures pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or logging.getLogger(record.name).isEnabledFor(
            logging.DEBUG
        ):
            return True
        message = record.getMessage()
        return not any(task in message for task in ROUTINE_TASKS)


@after_setup_logger.connect
def _quiet_routine_tasks(**kwargs) -> None:
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).addFilter(RoutineTasksAtDebug())
