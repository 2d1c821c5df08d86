"""Sync runs: one pass of pulling, processing or delivering, with its counts."""

from __future__ import annotations

from django.db import models


class SyncRun(models.Model):
    class Kind(models.TextChoices):
        CYCLE = "cycle", "Cycle"
        PULL = "pull", "Pull"
        PROCESS = "process", "Process"
        DELIVER = "deliver", "Deliver"
        BACKFILL = "backfill", "Backfill"
        REPLAY = "replay", "Replay"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    connection = models.ForeignKey(
        "pipeline.Connection", on_delete=models.SET_NULL, null=True, blank=True
    )
    entity = models.CharField(max_length=48, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    pulled = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.kind}, {self.status})"

    @property
    def actor(self) -> str:
        """How history rows written by this run name their actor."""
        return f"run:{self.pk}"
