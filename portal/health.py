"""Worker health: record heartbeats and tell whether the workers are alive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from portal.models import WorkerHeartbeat

# Keep a day of heartbeats at the default interval; older ones say nothing new.
HEARTBEATS_KEPT = 6000


def heartbeat_record(*, task_id: str, sent_at: datetime, worker_hostname: str) -> WorkerHeartbeat:
    """Store one completed round trip. Idempotent per task id (a redelivered task adds nothing)."""
    beat, _ = WorkerHeartbeat.objects.get_or_create(
        task_id=task_id,
        defaults={
            "sent_at": sent_at,
            "completed_at": timezone.now(),
            "worker_hostname": worker_hostname,
        },
    )
    stale = WorkerHeartbeat.objects.order_by("-completed_at").values_list("id", flat=True)[
        HEARTBEATS_KEPT : HEARTBEATS_KEPT + 1
    ]
    if stale:
        WorkerHeartbeat.objects.filter(id__lte=stale[0]).delete()
    return beat


@dataclass(frozen=True)
class WorkerStatus:
    last: WorkerHeartbeat | None
    healthy: bool
    age_seconds: int | None


def worker_status_get(*, now: datetime | None = None) -> WorkerStatus:
    """Healthy when a heartbeat completed within three beat intervals."""
    now = now or timezone.now()
    last = WorkerHeartbeat.objects.order_by("-completed_at").first()
    if last is None:
        return WorkerStatus(last=None, healthy=False, age_seconds=None)
    age = now - last.completed_at
    limit = timedelta(seconds=3 * settings.HEARTBEAT_INTERVAL_SECONDS)
    return WorkerStatus(last=last, healthy=age <= limit, age_seconds=int(age.total_seconds()))
