"""MappingTable: every published mapping version in memory, resolved by the record's date.

Pure: no database access. Build one per batch from `selectors.mapping_tables_load()` (two
queries whatever the size), then call `lookup()` per record and field; a lookup is two dict
reads and a binary search over the set's published versions.

Which version maps a record: among the set's PUBLISHED versions (retired ones are not in the
table), the one with the latest `effective_from` on or before the record's date. A value
missing from that version is a miss (None): older versions are never consulted, since a newer
version that drops a value means the value is no longer mapped.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Resolved:
    """A source value's target in one version. `attributes` is read-only (shared by lookups)."""

    target_value: str
    attributes: Mapping[str, Any]
    version_id: int
    version_number: int
    set_slug: str

    @property
    def stamp(self) -> dict[str, int]:
        """`{set_slug: version_number}`, to merge into the versions noted on a record."""
        return {self.set_slug: self.version_number}


@dataclass(frozen=True, slots=True)
class TableVersion:
    """One published version as the table holds it: `entries` maps source → (target, attrs)."""

    set_slug: str
    version_id: int
    number: int
    effective_from: dt.date
    entries: Mapping[str, tuple[str, Mapping[str, Any]]] = field(default_factory=dict)


def _day(on: dt.date) -> dt.date:
    # A datetime is a date too, but which day it falls on depends on a timezone the table
    # cannot know: the caller decides.
    if isinstance(on, dt.datetime) or not isinstance(on, dt.date):
        raise TypeError(f"`on` must be a date (decide the day in the firm's timezone), got {on!r}")
    return on


class MappingTable:
    """Published mapping versions by set, ordered by effective date. Immutable once built.

    Raises ValueError when two versions of one set share an effective date (the database
    forbids it for published versions, so this means the input was not what the loader gives).
    """

    def __init__(self, versions: Iterable[TableVersion]) -> None:
        by_set: dict[str, list[TableVersion]] = {}
        for version in versions:
            by_set.setdefault(version.set_slug, []).append(version)
        self._versions: dict[str, tuple[TableVersion, ...]] = {}
        self._dates: dict[str, tuple[dt.date, ...]] = {}
        for slug, items in by_set.items():
            items.sort(key=lambda v: v.effective_from)
            dates = tuple(v.effective_from for v in items)
            if len(set(dates)) != len(dates):
                raise ValueError(f"Mapping set {slug!r} has two versions effective on one date.")
            self._versions[slug] = tuple(items)
            self._dates[slug] = dates

    @classmethod
    def from_rows(
        cls,
        *,
        versions: Iterable[tuple[int, str, int, dt.date]],
        entries: Iterable[tuple[int, str, str, Mapping[str, Any] | None]],
    ) -> MappingTable:
        """Build from plain rows: versions (id, set_slug, number, effective_from) and entries
        (version_id, source_value, target_value, attributes). Entries of unknown versions are
        ignored."""
        tables: dict[int, dict[str, tuple[str, Mapping[str, Any]]]] = {}
        heads = []
        for version_id, slug, number, effective_from in versions:
            tables[version_id] = {}
            heads.append((version_id, slug, number, effective_from))
        for version_id, source, target, attributes in entries:
            table = tables.get(version_id)
            if table is not None:
                frozen = MappingProxyType(dict(attributes)) if attributes else _EMPTY
                table[source] = (target, frozen)
        return cls(
            TableVersion(
                set_slug=slug,
                version_id=version_id,
                number=number,
                effective_from=effective_from,
                entries=tables[version_id],
            )
            for version_id, slug, number, effective_from in heads
        )

    @property
    def set_slugs(self) -> frozenset[str]:
        return frozenset(self._versions)

    def version_for(self, set_slug: str, on: dt.date) -> TableVersion | None:
        """The version of `set_slug` effective on `on`, or None (unknown set, or before the
        first published version). Use it to note the version even when a lookup misses."""
        dates = self._dates.get(set_slug)
        if dates is None:
            return None
        index = bisect_right(dates, _day(on)) - 1
        return None if index < 0 else self._versions[set_slug][index]

    def lookup(self, set_slug: str, source_value: str, on: dt.date) -> Resolved | None:
        """The target of `source_value` in the version of `set_slug` effective on `on`.

        None when no version is effective that day or the value is not in it. `source_value`
        must be a str (TypeError otherwise): an int id would silently miss.
        """
        if not isinstance(source_value, str):
            raise TypeError(f"source_value must be a str, got {type(source_value).__name__}")
        version = self.version_for(set_slug, on)
        if version is None:
            return None
        hit = version.entries.get(source_value)
        if hit is None:
            return None
        target, attributes = hit
        return Resolved(
            set_slug=set_slug,
            target_value=target,
            attributes=attributes,
            version_id=version.version_id,
            version_number=version.number,
        )

    def versions_on(self, on: dt.date, *, sets: Iterable[str] | None = None) -> dict[str, int]:
        """`{set_slug: version_number}` of the versions effective on `on` (sets with none are
        left out): what a record dated `on` is mapped with."""
        slugs = self._versions if sets is None else sets
        found = {}
        for slug in slugs:
            version = self.version_for(slug, on)
            if version is not None:
                found[slug] = version.number
        return found
