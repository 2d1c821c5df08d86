"""Reads of field ownership for people: who owns what today, what changes next, what is pending.

The pipeline reads ownership through `selectors.ownership_book_load` (one query, pure merge);
these selectors serve the /ownership/ pages and never write.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from sync.mappings.models import OwnershipChange, OwnershipRule


@dataclass
class EntityOwnership:
    """One entity's rules in force on a day: its default (if any) and its field overrides."""

    entity: str
    default: OwnershipRule | None = None
    fields: list[OwnershipRule] = field(default_factory=list)


def _in_force(on: dt.date) -> Q:
    return Q(effective_from__lte=on) & (Q(effective_to__isnull=True) | Q(effective_to__gt=on))


def ownership_in_force(*, on: dt.date) -> list[EntityOwnership]:
    """Every rule in force on `on`, grouped by entity (entities and fields sorted by name).

    One query. A field without a rule of its own is owned by its entity's default.
    """
    grouped: dict[str, EntityOwnership] = {}
    for rule in OwnershipRule.objects.filter(_in_force(on)).order_by("entity", "field"):
        entry = grouped.setdefault(rule.entity, EntityOwnership(rule.entity))
        if rule.field:
            entry.fields.append(rule)
        else:
            entry.default = rule
    return list(grouped.values())


def ownership_upcoming(*, on: dt.date) -> QuerySet[OwnershipRule]:
    """Rules that start after `on`, soonest first: the handovers already published."""
    return OwnershipRule.objects.filter(effective_from__gt=on).order_by(
        "effective_from", "entity", "field"
    )


def ownership_changes_list(*, pending: bool, limit: int = 100) -> QuerySet[OwnershipChange]:
    """Change requests, newest first: pending (draft or submitted) or decided ones."""
    changes = OwnershipChange.objects.select_related("created_by", "submitted_by", "decided_by")
    waiting = Q(status__in=OwnershipChange.PENDING_STATUSES)
    changes = changes.filter(waiting if pending else ~waiting)
    return changes.order_by("-created_at", "-pk")[:limit]


def ownership_timeline(*, entity: str, field: str) -> QuerySet[OwnershipRule]:
    """Every rule of one entity and field (blank: the entity default), oldest first."""
    return OwnershipRule.objects.filter(entity=entity, field=field).order_by("effective_from")


def ownership_key_changes(*, entity: str, field: str) -> QuerySet[OwnershipChange]:
    """Every change request for one entity and field, newest first."""
    return (
        OwnershipChange.objects.filter(entity=entity, field=field)
        .select_related("created_by", "submitted_by", "decided_by")
        .order_by("-created_at", "-pk")
    )
