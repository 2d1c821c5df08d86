"""The health task proves broker, worker and database work together; the portal shows it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from portal.health import heartbeat_record, worker_status_get
from portal.models import WorkerHeartbeat
from portal.tasks import heartbeat


@pytest.mark.integration
def test_a_heartbeat_round_trips_through_a_real_worker_and_shows_on_the_runs_page(
    celery_worker_process, client, role_user
):
    result = heartbeat.delay()
    answer = result.get(timeout=60)

    stored = WorkerHeartbeat.objects.get(task_id=result.id)
    assert stored.worker_hostname.startswith("test-worker-")
    assert answer["worker"] == stored.worker_hostname
    assert stored.completed_at >= stored.sent_at

    client.force_login(role_user("integration_ops"))
    page = client.get(reverse("area-runs")).content.decode()
    assert "Workers are running." in page
    assert stored.worker_hostname in page


@pytest.mark.django_db
def test_a_redelivered_heartbeat_is_stored_once():
    sent = timezone.now()
    heartbeat_record(task_id="t-1", sent_at=sent, worker_hostname="w1")
    heartbeat_record(task_id="t-1", sent_at=sent, worker_hostname="w1")
    assert WorkerHeartbeat.objects.filter(task_id="t-1").count() == 1


@pytest.mark.django_db
def test_workers_count_as_down_when_the_last_heartbeat_is_older_than_three_intervals(settings):
    settings.HEARTBEAT_INTERVAL_SECONDS = 10
    now = timezone.now()
    old = now - timedelta(seconds=31)
    WorkerHeartbeat.objects.create(
        task_id="old", sent_at=old, completed_at=old, worker_hostname="w1"
    )
    assert worker_status_get(now=now).healthy is False
    WorkerHeartbeat.objects.create(
        task_id="new",
        sent_at=now - timedelta(seconds=5),
        completed_at=now - timedelta(seconds=5),
        worker_hostname="w1",
    )
    status = worker_status_get(now=now)
    assert status.healthy is True
    assert status.age_seconds == 5


@pytest.mark.django_db
def test_with_no_heartbeat_at_all_the_workers_are_reported_down():
    assert worker_status_get().healthy is False


def test_routine_beat_tasks_log_at_debug_and_their_failures_still_show():
    import logging

    from portal.celery import RoutineTasksAtDebug

    quiet = RoutineTasksAtDebug()
    logger = logging.getLogger("celery.app.trace")
    logger.setLevel(logging.INFO)

    def record(level, message, *args):
        return logging.LogRecord(logger.name, level, __file__, 1, message, args, None)

    assert not quiet.filter(record(logging.INFO, "Task %s[%s] received", "portal.heartbeat", "1"))
    assert quiet.filter(record(logging.INFO, "Task %s[%s] received", "sync.cycle_run", "2"))
    assert quiet.filter(record(logging.ERROR, "Task %s[%s] raised", "sync.deliveries_sweep", "3"))
    logger.setLevel(logging.DEBUG)
    try:
        assert quiet.filter(record(logging.INFO, "Task %s received", "portal.heartbeat"))
    finally:
        logger.setLevel(logging.NOTSET)
