"""What a finished cycle sets off: a reconciliation when it processed or delivered something,
never for a pull that only re-read records it already held."""

from __future__ import annotations

import pytest
from django.utils import timezone

from sync.pipeline.models import SyncRun
from sync.tasks_cycle import AFTER_CYCLE_TASK, cycle_run


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("counts", "reconciles"),
    [
        ({"pulled": 79}, False),  # re-read, nothing processed
        ({"pulled": 79, "updated": 1}, True),
        ({"unchanged": 3}, True),
        ({"delivered": 2}, True),
        ({}, False),
    ],
)
def test_a_reconciliation_follows_a_cycle_that_changed_something(monkeypatch, counts, reconciles):
    run = SyncRun.objects.create(
        kind=SyncRun.Kind.CYCLE,
        started_at=timezone.now(),
        status=SyncRun.Status.SUCCEEDED,
        **counts,
    )
    monkeypatch.setattr("sync.pipeline.cycle.sync_cycle_run", lambda **kwargs: run)
    sent = []

    class Signature:
        def __init__(self, name, kwargs):
            self.name, self.kwargs = name, kwargs

        def apply_async(self):
            sent.append((self.name, self.kwargs))

    monkeypatch.setattr(cycle_run.app, "signature", lambda name, kwargs: Signature(name, kwargs))
    monkeypatch.setattr(
        "sync.pipeline.exception_summary.exception_summary_refresh_soon", lambda: None
    )

    cycle_run(connection_ids=None)

    assert sent == ([(AFTER_CYCLE_TASK, {"sync_run_id": run.pk})] if reconciles else [])
