"""The Celery app: JSON only, bounded tasks, explicit task names, beat schedule in code."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("ledgerbridge")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _beat_schedule() -> dict:
    from django.conf import settings

    return {
        "portal-heartbeat": {
            "task": "portal.heartbeat",
            "schedule": float(settings.HEARTBEAT_INTERVAL_SECONDS),
            "options": {"expires": float(settings.HEARTBEAT_INTERVAL_SECONDS)},
        },
    }


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **kwargs) -> None:
    sender.conf.beat_schedule = _beat_schedule()
