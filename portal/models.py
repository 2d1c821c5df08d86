"""Portal-level records: worker heartbeats and the permissions that open each portal area."""

from __future__ import annotations

from django.db import models


class PortalArea(models.Model):
    """Holds no rows: it only carries the permissions that open each area of the portal
    (`area_*`) and that let a role act in it (`act_*`).

    The areas and which roles see them are listed in portal/roles.py.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("area_exceptions", "Open the Exceptions area"),
            ("area_mappings", "Open the Mappings area"),
            ("area_ownership", "Open the Ownership area"),
            ("area_runs", "Open the Runs area"),
            ("area_reconciliation", "Open the Reconciliation area"),
            ("area_dashboards", "Open the Dashboards area"),
            ("act_exceptions", "Act in the Exceptions area"),
            ("act_mappings", "Act in the Mappings area"),
            ("act_ownership", "Act in the Ownership area"),
            ("act_runs", "Act in the Runs area"),
            ("act_reconciliation", "Act in the Reconciliation area"),
        ]

    def __str__(self) -> str:
        return "portal area permissions"


class WorkerHeartbeat(models.Model):
    """One round trip of the health task: sent by beat (or a person), run by a Celery worker.

    A recent row proves that the broker, a worker and the database are all working.
    """

    sent_at = models.DateTimeField()
    completed_at = models.DateTimeField()
    worker_hostname = models.CharField(max_length=200)
    task_id = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-completed_at"]
        indexes = [models.Index(fields=["-completed_at"])]

    def __str__(self) -> str:
        return f"{self.worker_hostname} at {self.completed_at:%Y-%m-%d %H:%M:%S}"

    @property
    def round_trip_ms(self) -> int:
        return int((self.completed_at - self.sent_at).total_seconds() * 1000)


class ExceptionGroupJob(models.Model):
    """One action on a whole root-cause group, run by a worker in chunks, with its progress.

    Started from the Exceptions area when a group is larger than a page can act on inline;
    the page polls it. At most one job runs per (group, action): asking again while it runs
    shows the same job. A job resumes after its last finished chunk, and every chunk acts only
    on items still open, so a job that runs twice acts on no item twice.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    root_cause = models.CharField(max_length=64)
    action = models.CharField(max_length=16)  # replay, resolve or ignore
    reason = models.TextField(blank=True)
    queues = models.JSONField(default=list, help_text="The queues the requester may act in.")
    requested_by = models.ForeignKey(
        "auth.User", on_delete=models.PROTECT, related_name="exception_group_jobs"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    last_item_id = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["root_cause", "action"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_job_per_group_action",
            )
        ]

    def __str__(self) -> str:
        return f"{self.action} group {self.root_cause}: {self.done}/{self.total} ({self.status})"

    @property
    def percent(self) -> int:
        return 100 if not self.total else min(100, round(100 * self.done / self.total))

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
