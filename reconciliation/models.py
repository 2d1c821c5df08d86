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


class TimeRollup(models.Model):
    """Time entries waiting to be approved, posted or billed, summed per month worked, project,
    cost centre (the business unit), currency, status and billable: what the dashboards read
    instead of scanning every entry (`reconciliation.rollup`, rebuilt by beat; docs/kpis.md).
    Only the statuses the figures use are kept: submitted, approved, posted."""

    month = models.DateField(help_text="First day of the month worked.")
    # No database constraint: the rollup is rebuilt wholesale and never the reason a project or
    # cost centre cannot be deleted; a stale id is dropped at the next rebuild.
    project = models.ForeignKey(
        "sync.Project", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    cost_centre = models.ForeignKey(
        "sync.CostCentre",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        related_name="+",
    )
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=16)
    billable = models.BooleanField()
    entries = models.PositiveIntegerField()
    hours = models.DecimalField(max_digits=20, decimal_places=2)
    value = models.DecimalField(max_digits=24, decimal_places=4, help_text="hours x bill rate")
    oldest = models.DateField(help_text="Earliest work date.")

    class Meta:
        indexes = [models.Index(fields=["status", "month"], name="timerollup_status_month")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} project {self.project_id} {self.status}: {self.entries}"


class RollupState(models.Model):
    """When the rollups were last rebuilt (one row): pages say how old their figures are."""

    name = models.CharField(max_length=40, unique=True)
    refreshed_at = models.DateTimeField()
    seconds = models.FloatField(help_text="How long the last rebuild took.")
    rows = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.name} rollup at {self.refreshed_at:%Y-%m-%d %H:%M}"
