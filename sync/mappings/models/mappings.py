"""Versioned mappings: a set (what is mapped), its versions (when), their entries (what to what).

Immutability is enforced here, in the model layer, so that every write path (services, admin,
shell, bulk helpers) meets it:

- a version's entries may be added, changed or deleted only while the version is a DRAFT
  (`MappingEntry.save/delete`, the entry QuerySet's `update/delete/bulk_create`);
- a version's status moves only along `MappingVersion.TRANSITIONS`, a new version starts as a
  draft, and a published or retired version changes nothing but its move to retired;
- a published or retired version cannot be deleted (and a set with versions is PROTECTed).

Raw SQL can still bypass all of this; nothing in Ledgerbridge writes mappings that way.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from sync.mappings.errors import MappingTransitionRefused, MappingVersionFrozen
from sync.mappings.models.systems import System
from sync.models.history import HistoryActorFields, LeanHistoricalRecords


class MappingSet(models.Model):
    """What is mapped: one kind of reference value (or one connector's field map)."""

    class Kind(models.TextChoices):
        LEGAL_ENTITY = "legal_entity", "Legal entity"
        SERVICE_ITEM = "service_item", "Service item"
        TAX_CODE = "tax_code", "Tax code"
        PROJECT_TEMPLATE = "project_template", "Project template"
        COST_CENTRE = "cost_centre", "Cost centre"
        CURRENCY = "currency", "Currency"
        RATE_CARD = "rate_card", "Rate card"
        FIELD_MAP = "field_map", "Field map of a connector"

    slug = models.SlugField(max_length=64, unique=True, help_text="Stable key used by code.")
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    system = models.CharField(
        max_length=16,
        choices=System.choices,
        blank=True,
        help_text="The system whose values are mapped; required for a field map.",
    )
    connector = models.SlugField(
        max_length=64,
        blank=True,
        help_text="Name of the connection a field map belongs to, when the system has several.",
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    history = LeanHistoricalRecords(bases=[HistoryActorFields])

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def clean(self) -> None:
        if self.kind == self.Kind.FIELD_MAP and not self.system:
            raise ValidationError({"system": "A field map belongs to a system: choose one."})


class MappingVersionQuerySet(models.QuerySet):
    def delete(self):
        if self.exclude(status=MappingVersion.Status.DRAFT).exists():
            raise MappingVersionFrozen("Only draft mapping versions can be deleted.")
        return super().delete()

    def update(self, **kwargs):
        # QuerySet.update() bypasses save() and history: allowed on drafts only.
        if self.exclude(status=MappingVersion.Status.DRAFT).exists():
            raise MappingVersionFrozen(
                "Versions in review, published or retired change through the services only."
            )
        return super().update(**kwargs)


class MappingVersion(models.Model):
    """One numbered version of a set: draft → in review → published (from a date) → retired.

    `number` is sequential per set (1, 2, 3 …) and never reused. Which published version a
    record is mapped with is decided by effective dating (latest `effective_from` on or before
    the record's date); publishing does not retire older versions.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        IN_REVIEW = "in_review", "In review"
        PUBLISHED = "published", "Published"
        RETIRED = "retired", "Retired"

    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        Status.DRAFT: frozenset({Status.IN_REVIEW}),
        Status.IN_REVIEW: frozenset({Status.DRAFT, Status.PUBLISHED}),
        Status.PUBLISHED: frozenset({Status.RETIRED}),
        Status.RETIRED: frozenset(),
    }
    FROZEN_STATUSES: ClassVar[frozenset[str]] = frozenset({Status.PUBLISHED, Status.RETIRED})
    # What a published version may still change when it is retired.
    RETIRE_FIELDS: ClassVar[frozenset[str]] = frozenset({"status", "retired_by", "retired_at"})

    mapping_set = models.ForeignKey(MappingSet, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(editable=False)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True, editable=False
    )
    based_on = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        help_text="The version whose entries this one started from (rollbacks included).",
    )
    effective_from = models.DateField(
        null=True, blank=True, help_text="First day the version maps records; set on publishing."
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    retired_at = models.DateTimeField(null=True, blank=True, editable=False)
    retired_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )

    objects = MappingVersionQuerySet.as_manager()
    history = LeanHistoricalRecords(bases=[HistoryActorFields])

    class Meta:
        ordering = ["mapping_set", "number"]
        permissions = [
            ("publish_mappingversion", "Can publish, retire and roll back mapping versions"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["mapping_set", "number"], name="mappings_version_number_unique"
            ),
            models.UniqueConstraint(
                fields=["mapping_set", "effective_from"],
                condition=Q(status="published"),
                name="mappings_one_published_version_per_effective_date",
                violation_error_message=(
                    "Another published version of this set is effective from that date."
                ),
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "in_review"]) | Q(effective_from__isnull=False),
                name="mappings_published_version_has_effective_from",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mapping_set} v{self.number} ({self.get_status_display().lower()})"

    def save(self, *args, **kwargs) -> None:
        """Save, refusing illegal status moves and any change to a published version.

        The stored row is read once (versions are saved rarely, by people), so a stale or
        hand-built instance is checked against the database, not against itself.
        Raises MappingTransitionRefused or MappingVersionFrozen before anything is written.
        """
        stored = None
        if self.pk is not None:
            stored = type(self)._base_manager.filter(pk=self.pk).first()
        if stored is None:
            if self.status != self.Status.DRAFT:
                raise self._refused(from_status="(new)")
        else:
            if not self.transition_allowed(from_status=stored.status, to_status=self.status):
                raise self._refused(from_status=stored.status)
            if stored.status in self.FROZEN_STATUSES:
                retiring = stored.status != self.status  # published → retired, checked above
                may_change = self.RETIRE_FIELDS if retiring else frozenset()
                changed = [
                    f.name
                    for f in self._meta.concrete_fields
                    if f.name not in may_change
                    and getattr(self, f.attname) != getattr(stored, f.attname)
                ]
                if changed:
                    raise MappingVersionFrozen(
                        f"{stored} is {stored.status}: {', '.join(changed)} cannot change."
                    )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs) -> Any:
        stored = type(self)._base_manager.filter(pk=self.pk).values_list("status", flat=True)
        if any(status != self.Status.DRAFT for status in stored):
            raise MappingVersionFrozen(f"{self} is not a draft: it cannot be deleted.")
        return super().delete(*args, **kwargs)

    @property
    def is_editable(self) -> bool:
        """Whether entries may be added, changed or deleted (drafts only)."""
        return self.status == self.Status.DRAFT

    @classmethod
    def transition_allowed(cls, *, from_status: str, to_status: str) -> bool:
        return from_status == to_status or to_status in cls.TRANSITIONS.get(from_status, ())

    def _refused(self, *, from_status: str) -> MappingTransitionRefused:
        return MappingTransitionRefused(
            model="MappingVersion",
            pk=self.pk,
            field="status",
            from_status=from_status,
            to_status=self.status,
        )


def _frozen_versions_check(version_ids: set[int]) -> None:
    """Raise MappingVersionFrozen unless every version in `version_ids` is a draft."""
    frozen = list(
        MappingVersion._base_manager.filter(pk__in=version_ids)
        .exclude(status=MappingVersion.Status.DRAFT)
        .values_list("mapping_set__slug", "number", "status")[:5]
    )
    if frozen:
        described = ", ".join(f"{slug} v{number} ({status})" for slug, number, status in frozen)
        raise MappingVersionFrozen(
            f"Entries of {described} cannot be added, changed or deleted: "
            "only a draft version is editable (published versions are immutable)."
        )


class MappingEntryQuerySet(models.QuerySet):
    def delete(self):
        _frozen_versions_check(set(self.values_list("version_id", flat=True).distinct()))
        return super().delete()

    def update(self, **kwargs):
        ids = set(self.values_list("version_id", flat=True).distinct())
        if "version" in kwargs or "version_id" in kwargs:
            target = kwargs.get("version_id", kwargs.get("version"))
            ids.add(getattr(target, "pk", target))
        _frozen_versions_check(ids)
        return super().update(**kwargs)

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        _frozen_versions_check({obj.version_id for obj in objs})
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs = list(objs)
        _frozen_versions_check({obj.version_id for obj in objs})
        return super().bulk_update(objs, fields, *args, **kwargs)


class MappingEntry(models.Model):
    """One source value and what it maps to in a version, with optional attributes.

    Source values match exactly (case and spaces included): normalise in the connector.
    """

    version = models.ForeignKey(MappingVersion, on_delete=models.CASCADE, related_name="entries")
    source_value = models.CharField(max_length=255)
    target_value = models.CharField(max_length=255)
    attributes = models.JSONField(
        default=dict, blank=True, help_text="Extra values for the target, e.g. a tax rate."
    )

    objects = MappingEntryQuerySet.as_manager()
    history = LeanHistoricalRecords(bases=[HistoryActorFields])

    class Meta:
        ordering = ["version", "source_value"]
        verbose_name_plural = "mapping entries"
        constraints = [
            models.UniqueConstraint(
                fields=["version", "source_value"], name="mappings_entry_source_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_value} → {self.target_value}"

    def save(self, *args, **kwargs) -> None:
        """Save, refusing (MappingVersionFrozen) unless the version — old and new — is a draft."""
        ids = {self.version_id}
        if self.pk is not None:
            ids |= set(
                type(self)._base_manager.filter(pk=self.pk).values_list("version_id", flat=True)
            )
        _frozen_versions_check(ids)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs) -> Any:
        _frozen_versions_check({self.version_id})
        return super().delete(*args, **kwargs)

    def clean(self) -> None:
        if not isinstance(self.attributes, dict):
            raise ValidationError({"attributes": "Attributes are a JSON object."})
