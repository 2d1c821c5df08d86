"""Reconciliation's records: daily KPI snapshots (runs, breaks and leakage findings to come)."""

from __future__ import annotations

from django.db import models


class KpiSnapshot(models.Model):
    """The KPI report of one day (`reconciliation.kpis.kpis_compute`), kept so that trends read
    one row a day instead of recomputing history. Taken by beat every hour: the day's row is
    replaced until the day ends, so it holds the day's last values."""

    day = models.DateField(unique=True)
    computed_at = models.DateTimeField()
    values = models.JSONField()

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"KPIs of {self.day}"
