"""Reads of versioned mappings and ownership rules, shaped for batch processing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Q

from sync.mappings.models import MappingEntry, MappingSet, MappingVersion, OwnershipRule
from sync.mappings.ownership import OwnershipBook, Rule
from sync.mappings.resolve import MappingTable

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
