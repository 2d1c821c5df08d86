"""Reconciliation's writes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone

from reconciliation.kpis import kpis_compute
from reconciliation.models import KpiSnapshot
from reconciliation.rollup import time_rollup_refresh


def kpi_snapshot_take(*, day: dt.date | None = None, redis: Any = None) -> KpiSnapshot:
    """Compute the KPIs of `day` (default today) and store them as its snapshot, replacing an
    earlier one of the same day. Idempotent: taking it twice leaves one row, the later values."""
    now = timezone.now()
    day = day or timezone.localdate(now)
    time_rollup_refresh()  # leakage reads the rollup: take the day's figures from fresh sums
    values = kpis_compute(as_of=day, redis=redis)
    snapshot, _ = KpiSnapshot.objects.update_or_create(
        day=day, defaults={"computed_at": now, "values": values}
    )
    return snapshot
