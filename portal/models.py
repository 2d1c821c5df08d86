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
