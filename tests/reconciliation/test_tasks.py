"""Reconciliation's tasks: named, bounded, scheduled nightly; thin over the run service."""

from __future__ import annotations

import pytest
from celery.schedules import crontab

from reconciliation.tasks import reconcile_after_cycle, reconcile_nightly

pytestmark = pytest.mark.django_db


def test_a_full_reconciliation_is_scheduled_every_night():
    from portal.celery import _beat_schedule

    entry = _beat_schedule()["reconciliation-nightly"]
    assert entry["task"] == reconcile_nightly.name == "reconciliation.nightly"
    assert entry["schedule"] == crontab(hour=2, minute=30)


def test_the_after_cycle_task_is_the_one_the_cycle_sends_by_name_and_skips_a_gone_run():
    from sync.tasks_cycle import AFTER_CYCLE_TASK

    assert reconcile_after_cycle.name == AFTER_CYCLE_TASK
    assert reconcile_after_cycle.max_retries == 3
    assert Exception not in reconcile_after_cycle.autoretry_for
    assert reconcile_after_cycle.apply(kwargs={"sync_run_id": 99999}).get() is None


def test_a_cycle_that_touched_nothing_starts_no_reconciliation():
    from django.utils import timezone

    from reconciliation.models import ReconciliationRun
    from sync.pipeline.models import SyncRun

    run = SyncRun.objects.create(kind="cycle", started_at=timezone.now())
    assert reconcile_after_cycle.apply(kwargs={"sync_run_id": run.pk}).get() is None
    assert not ReconciliationRun.objects.exists()
