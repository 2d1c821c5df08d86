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
    the page polls it. At most one job runs per (group, action, legal-entity scope): asking
    again while it runs shows the same job. A job resumes after its last finished chunk, and
    every chunk acts only on items still open, so a job that runs twice acts on no item twice.
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
    legal_entities = models.JSONField(
        null=True,
        blank=True,
        help_text="The legal entities the requester is limited to (None: every entity).",
    )
    # The same as a string ("" for every entity): one active job per group, action and scope,
    # so a user limited to one entity never gets (or waits for) a job over other entities.
    scope = models.CharField(max_length=255, blank=True, default="")
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
                fields=["root_cause", "action", "scope"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_job_per_group_action_scope",
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


class UserLegalEntity(models.Model):
    """A legal entity whose exception items a user works. A user with no row works every
    entity's items; a user with rows works those entities' items and the items of no known
    entity (`portal.exception_scope`). Edited in the admin by whoever manages users."""

    user = models.ForeignKey(
        "auth.User", on_delete=models.CASCADE, related_name="legal_entity_assignments"
    )
    legal_entity = models.CharField(
        max_length=20,
        help_text="The entity's code as exception items carry it (e.g. LB-UK): "
        "sync.LegalEntity.code, or the source's code for an entity not mapped yet.",
    )

    class Meta:
        verbose_name = "user's legal entity"
        verbose_name_plural = "users' legal entities"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "legal_entity"], name="one_assignment_per_user_entity"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} works {self.legal_entity}"
