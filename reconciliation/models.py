"""Reconciliation's records: runs and their breaks, the rows a run stages, daily KPI snapshots,
the time rollup the dashboards read."""

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


class ReconciliationRun(models.Model):
    """One comparison of source against target for some pairs, over a scope
    (docs/reconciliation.md).

    `totals` holds, per pair and side, per currency: {"count", "quantity", "amount"} (decimal
    strings; quantity is hours for time, null where a pair has none). `break_counts` holds, per
    pair and break kind, {"explained": n, "unexplained": n}.
    """

    class Trigger(models.TextChoices):
        CYCLE = "cycle", "After a sync cycle"
        NIGHTLY = "nightly", "Nightly"
        ON_DEMAND = "on_demand", "On demand"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    # "YYYY-MM"; blank: every period.
    period = models.CharField(max_length=7, blank=True)
    pairs = models.JSONField(default=list)
    legal_entity = models.ForeignKey(
        "sync.LegalEntity", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    project = models.ForeignKey(
        "sync.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The cycle this run followed (trigger "cycle").
    sync_run = models.ForeignKey(
        "pipeline.SyncRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    totals = models.JSONField(default=dict, blank=True)
    break_counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Reconciliation {self.pk} ({self.trigger}, {self.period or 'all periods'})"


class BreakKind(models.TextChoices):
    MISSING_IN_TARGET = "missing_in_target", "Missing in target"
    MISSING_IN_SOURCE = "missing_in_source", "Missing in source"
    DUPLICATE = "duplicate", "Duplicate in target"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount mismatch"
    STATUS_MISMATCH = "status_mismatch", "Status mismatch"


class ReconciliationBreak(models.Model):
    """A difference one run found between a pair's source and target, with the records on both
    sides and the money involved. `record_key` ("recon:<pair>:<key>:<kind>") names the same
    difference across runs: the exception item raised for it carries the same key."""

    run = models.ForeignKey(ReconciliationRun, on_delete=models.CASCADE, related_name="breaks")
    pair = models.CharField(max_length=40)
    kind = models.CharField(max_length=24, choices=BreakKind.choices)
    record_key = models.CharField(max_length=255)
    source_external_id = models.CharField(max_length=255, blank=True)
    target_external_ids = models.JSONField(default=list, blank=True)
    # The source's amount (the target's where the source has none); difference = target -
    # source. Null for pairs without money.
    amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    difference = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    period = models.CharField(max_length=7, blank=True)
    legal_entity = models.ForeignKey(
        "sync.LegalEntity", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    project = models.ForeignKey(
        "sync.Project", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    explained = models.BooleanField(default=False)
    explanation = models.TextField(blank=True)
    exception_item = models.ForeignKey(
        "pipeline.ExceptionItem",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Both sides' values as compared (quantities, statuses), for the report.
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["run", "pair", "kind", "record_key"]
        indexes = [models.Index(fields=["run", "pair", "kind"], name="recon_break_run_pair")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.record_key}"


class StagedRow(models.Model):
    """One record of one side of a pair, staged for a run's set-based comparison; deleted when
    the run ends. Money and quantities are integers (minor units, hundredths), so comparisons
    are exact on every database (SQLite keeps decimals as floats)."""

    class Side(models.TextChoices):
        SOURCE = "s", "Source"
        TARGET = "t", "Target"

    # A plain integer, not a foreign key: COPY writes millions of these without a check each.
    run_id = models.BigIntegerField()
    pair = models.CharField(max_length=40)
    side = models.CharField(max_length=1, choices=Side.choices)
    # What the two sides are matched on (e.g. the ERP external id KT-TE-<PSA id>). A target row
    # without one is attributed by `match` before the comparison.
    key = models.CharField(max_length=255, null=True, blank=True)
    # A second, natural key (employee|date|task|hours) for target rows that carry no key.
    match = models.CharField(max_length=255, blank=True)
    external_id = models.CharField(max_length=255)
    # Must have a counterpart on the other side (e.g. approved time; not a rejected entry).
    required = models.BooleanField(default=True)
    status = models.CharField(max_length=32, blank=True)
    quantity = models.BigIntegerField(null=True, blank=True)
    amount = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    period = models.CharField(max_length=7, blank=True)
    legal_entity_id = models.BigIntegerField(null=True, blank=True)
    project_id = models.BigIntegerField(null=True, blank=True)
    # The canonical record's primary key (source rows), for explanations.
    record_id = models.BigIntegerField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["run_id", "pair", "side", "key"], name="recon_staged_key"),
            models.Index(fields=["run_id", "pair", "side", "match"], name="recon_staged_match"),
        ]

    def __str__(self) -> str:
        return f"{self.pair}/{self.side}: {self.key}"
