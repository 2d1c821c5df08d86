"""Portal tasks: thin wrappers that call services in portal/health.py."""

from __future__ import annotations

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from portal.health import heartbeat_record


@shared_task(name="portal.heartbeat", bind=True, max_retries=0)
def heartbeat(self) -> dict:
    """Round trip publisher → broker → worker → database; returns what it stored.

    The publish time comes from the `lb_sent_at` header stamped in portal/celery.py.
    """
    stamped = getattr(self.request, "lb_sent_at", None)
    sent = datetime.fromisoformat(stamped) if stamped else timezone.now()
    beat = heartbeat_record(
        task_id=self.request.id or "", sent_at=sent, worker_hostname=self.request.hostname or ""
    )
    return {"worker": beat.worker_hostname, "round_trip_ms": beat.round_trip_ms}


@shared_task(
    name="portal.exception_group_job_run",
    # Redelivered if the worker dies: the job resumes after its last finished chunk.
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=0,
    ignore_result=True,
)
def exception_group_job_run_task(job_id: int) -> None:
    from portal.exception_jobs import exception_group_job_run

    exception_group_job_run(job_id=job_id)
