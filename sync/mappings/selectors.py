"""Reads of versioned mappings and ownership rules, shaped for batch processing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Prefetch, Q

from sync.mappings.models import MappingEntry, MappingSet, MappingVersion, OwnershipRule
from sync.mappings.ownership import OwnershipBook, Rule
from sync.mappings.resolve import MappingTable
from sync.models import Currency, ExternalRef, LegalEntity

PUBLISHED = MappingVersion.Status.PUBLISHED
ENTRY_CHUNK = 5000


def mapping_versions_effective(
    *, kinds: Iterable[str] | None = None, on: dt.date
) -> dict[str, MappingVersion]:
    """`{set_slug: version}`: each set's published version effective on `on` (one query).

    Sets with no published version effective that day are left out; retired versions never
    count. `kinds` limits the sets to those kinds (MappingSet.Kind values).
    """
    versions = (
        MappingVersion.objects.filter(status=PUBLISHED, effective_from__lte=on)
        .select_related("mapping_set")
        .order_by("mapping_set_id", "effective_from")
    )
    if kinds is not None:
        versions = versions.filter(mapping_set__kind__in=list(kinds))
    effective: dict[str, MappingVersion] = {}
    for version in versions:
        effective[version.mapping_set.slug] = version  # later effective_from wins
    return effective


def mapping_tables_load(*, sets: Iterable[str | MappingSet] | None = None) -> MappingTable:
    """Every published version of `sets` (slugs or sets; None: all) with its entries, in memory.

    Two queries whatever the number of sets, versions and entries: the versions, then their
    entries (streamed in chunks). Build it once per batch; it does not see later publishes.
    """
    versions = MappingVersion.objects.filter(status=PUBLISHED)
    if sets is not None:
        slugs = [s.slug if isinstance(s, MappingSet) else s for s in sets]
        versions = versions.filter(mapping_set__slug__in=slugs)
    heads = list(versions.values_list("id", "mapping_set__slug", "number", "effective_from"))
    if not heads:
        return MappingTable(())
    # By id, not by status again: entries of a published version never change, so these are
    # exactly the versions read above even if one is retired in between.
    entry_rows = MappingEntry.objects.filter(version_id__in=[head[0] for head in heads])
    entries = entry_rows.values_list(
        "version_id", "source_value", "target_value", "attributes"
    ).iterator(chunk_size=ENTRY_CHUNK)
    return MappingTable.from_rows(versions=heads, entries=entries)


def ownership_book_load(*, on: dt.date | None = None) -> OwnershipBook:
    """The ownership rules in force on `on` or later, as an OwnershipBook (one query).

    Pass the earliest day the batch will ask about; the book refuses earlier days.
    None loads every rule, past ones included.
    """
    rules = OwnershipRule.objects.all()
    if on is not None:
        rules = rules.filter(Q(effective_to__isnull=True) | Q(effective_to__gt=on))
    return OwnershipBook(
        (
            Rule(
                entity=entity,
                field=field,
                owner_system=owner,
                effective_from=start,
                effective_to=end,
            )
            for entity, field, owner, start, end in rules.values_list(
                "entity", "field", "owner_system", "effective_from", "effective_to"
            )
        ),
        covers_from=on,
    )


# --- the mapping editor ---------------------------------------------------------------------


def mapping_sets_overview() -> list[MappingSet]:
    """Every set with its versions (newest first) and their people, in two queries.

    Each set's `versions_newest` lists its versions with `created_by`, `submitted_by` and
    `published_by` loaded.
    """
    versions = MappingVersion.objects.select_related(
        "created_by", "submitted_by", "published_by", "retired_by"
    ).order_by("-number")
    return list(
        MappingSet.objects.order_by("name").prefetch_related(
            Prefetch("versions", queryset=versions, to_attr="versions_newest")
        )
    )


@dataclass(frozen=True)
class ReferenceList:
    """The values a set's targets must be one of, and what they are, for the editor."""

    label: str
    values: frozenset[str]


def mapping_reference_list(*, mapping_set: MappingSet) -> ReferenceList | None:
    """The reference data a set's target values are checked against; None: not checked.

    - legal entity → the ERP subsidiaries Ledgerbridge knows: the ERP ids of legal entities
      (active ExternalRefs of system "erp"), learned from the ERP by the subsidiary pull;
    - currency → the currencies Ledgerbridge knows (ISO codes, `Currency`).
    Other kinds map to values no table here holds (ERP item ids, tax codes by jurisdiction):
    they are not checked. One query.
    """
    kind = mapping_set.kind
    if kind == MappingSet.Kind.LEGAL_ENTITY:
        refs = ExternalRef.objects.filter(
            system=ExternalRef.System.ERP,
            content_type=ContentType.objects.get_for_model(LegalEntity),
            status=ExternalRef.Status.ACTIVE,
        )
        return ReferenceList(
            "an ERP subsidiary id Ledgerbridge knows",
            frozenset(refs.values_list("external_id", flat=True)),
        )
    if kind == MappingSet.Kind.CURRENCY:
        return ReferenceList(
            "a currency code Ledgerbridge knows",
            frozenset(Currency.objects.values_list("code", flat=True)),
        )
    return None


@dataclass(frozen=True)
class EntryChange:
    source_value: str
    old: tuple[str, dict[str, Any]] | None  # (target, attributes); None: added
    new: tuple[str, dict[str, Any]] | None  # None: removed


@dataclass(frozen=True)
class VersionsDiff:
    added: list[EntryChange]
    removed: list[EntryChange]
    changed: list[EntryChange]
    unchanged: int

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


def _entries_of(version: MappingVersion) -> dict[str, tuple[str, dict[str, Any]]]:
    rows = version.entries.values_list("source_value", "target_value", "attributes")
    return {source: (target, attributes or {}) for source, target, attributes in rows}


def mapping_versions_diff(*, old: MappingVersion, new: MappingVersion) -> VersionsDiff:
    """What changes from `old`'s entries to `new`'s, by source value, sorted by it (2 queries).

    A row is changed when its target or attributes differ. Any two versions of any status may
    be compared, in either order.
    """
    before, after = _entries_of(old), _entries_of(new)
    added, removed, changed, unchanged = [], [], [], 0
    for source in sorted(before.keys() | after.keys()):
        was, now = before.get(source), after.get(source)
        if was is None:
            added.append(EntryChange(source, None, now))
        elif now is None:
            removed.append(EntryChange(source, was, None))
        elif was != now:
            changed.append(EntryChange(source, was, now))
        else:
            unchanged += 1
    return VersionsDiff(added, removed, changed, unchanged)


def mapping_versions_latest(*, slugs: Iterable[str]) -> dict[str, int]:
    """{set slug: id of its newest version (highest number), whatever its status}; one query."""
    latest: dict[str, int] = {}
    for slug, version_id in (
        MappingVersion.objects.filter(mapping_set__slug__in=list(slugs))
        .order_by("mapping_set__slug", "-number")
        .values_list("mapping_set__slug", "id")
    ):
        latest.setdefault(slug, version_id)
    return latest
