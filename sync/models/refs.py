"""Cross-references: the id a canonical record has in each external system."""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models

from sync.models.base import CanonicalModel, lifecycle_status_field


class ExternalRefQuerySet(models.QuerySet):
    def for_record(self, record: models.Model) -> ExternalRefQuerySet:
        """The refs of one canonical record, in every system."""
        return self.filter(
            content_type=ContentType.objects.get_for_model(record), object_id=str(record.pk)
        )


class ExternalRef(CanonicalModel):
    """Ties a canonical record to its id in one external system.

    A canonical record has at most one ref per system, and an external id names at most one
    record of a type per system; both are unique constraints, so a racing second create fails
    in the database instead of making a duplicate.
    """

    class System(models.TextChoices):
        CRM = "crm", "CRM"
        PSA = "psa", "PSA"
        HR = "hr", "HR"
        ERP = "erp", "ERP"
        BILLING = "billing", "Billing"

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        ORPHANED = "orphaned", "Orphaned (gone in the system)"

    system = models.CharField(max_length=20, choices=System.choices)
    # Reference data: no database constraint or index of its own (both unique constraints lead
    # with system and include it), PROTECT is enforced by Django (docs/decisions.md #21).
    content_type = models.ForeignKey(
        ContentType,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    # Text, not an integer: Currency's primary key is its ISO code.
    object_id = models.CharField(max_length=64)
    record = GenericForeignKey("content_type", "object_id")
    external_id = models.CharField(max_length=255)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    # Not indexed: references are found by their unique keys, never by status alone.
    status = lifecycle_status_field(Status, default=Status.ACTIVE, db_index=False)

    objects = ExternalRefQuerySet.as_manager()

    # Orphaned when the system answers "not found"; active again when it is relinked.
    TRANSITIONS = {
        Status.ACTIVE: frozenset({Status.ORPHANED}),
        Status.ORPHANED: frozenset({Status.ACTIVE}),
    }

    class Meta:
        verbose_name = "external reference"
        ordering = ["system", "content_type", "external_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["system", "content_type", "external_id"],
                name="externalref_unique_external_id",
            ),
            models.UniqueConstraint(
                fields=["system", "content_type", "object_id"],
                name="externalref_one_per_system_and_record",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.system}:{self.external_id} -> {self.content_type_id}:{self.object_id}"
