"""Field ownership in memory: who owns what on a day, and merging a change under those rules.

Pure: no database access. Load an `OwnershipBook` once per batch with
`selectors.ownership_book_load()`, then call `ownership_merge()` per incoming record.

Documented choices:
- A field's owner is its own rule in force that day, else the entity default (blank field)
  in force that day, else nobody.
- A field nobody owns (no rule, no entity default) is APPLIED from any source: ownership is
  opt-in per entity, and the seeded defaults cover every canonical entity, so an unowned field
  is one nobody has claimed yet (refusing it would park records nobody is asked to fix).
- A key absent from `current` counts as None. Setting a value where there was none is a
  change like any other: a non-owner cannot initialise an owned field.
- Values compare with `==`: the map step must hand over canonical values (Decimal, date, str)
  for a like-for-like comparison; "1.00" and Decimal("1.00") differ.
- `on` is the day the change is processed (for a replay, the original run's day): ownership
  decides who may change data at that time, whatever the record's own business date.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

ENTITY_DEFAULT = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """One ownership rule: in force on `effective_from <= day < effective_to` (None: open)."""

    entity: str
    field: str
    owner_system: str
    effective_from: dt.date
    effective_to: dt.date | None = None

    def applies_on(self, day: dt.date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)


class OwnershipBook:
    """Ownership rules by (entity, field), searchable by day. Immutable once built.

    `covers_from`: the first day the book answers for (rules that ended earlier were not
    loaded); asking about an earlier day raises ValueError rather than answering wrongly.
    Raises ValueError when two rules for one entity and field overlap (the database forbids it).
    """

    def __init__(self, rules: Iterable[Rule], *, covers_from: dt.date | None = None) -> None:
        grouped: dict[tuple[str, str], list[Rule]] = {}
        for rule in rules:
            grouped.setdefault((rule.entity, rule.field), []).append(rule)
        self._rules: dict[tuple[str, str], tuple[Rule, ...]] = {}
        self._starts: dict[tuple[str, str], tuple[dt.date, ...]] = {}
        for key, items in grouped.items():
            items.sort(key=lambda r: r.effective_from)
            for before, after in pairwise(items):
                if before.effective_to is None or before.effective_to > after.effective_from:
                    raise ValueError(f"Ownership rules overlap for {key}: {before} and {after}")
            self._rules[key] = tuple(items)
            self._starts[key] = tuple(r.effective_from for r in items)
        self.covers_from = covers_from

    def rule_for(self, entity: str, field: str, on: dt.date) -> Rule | None:
        """The rule deciding `entity`.`field` on `on`: the field's own, else the entity default."""
        if isinstance(on, dt.datetime) or not isinstance(on, dt.date):
            raise TypeError(f"`on` must be a date, got {on!r}")
        if self.covers_from is not None and on < self.covers_from:
            raise ValueError(f"This book was loaded from {self.covers_from}; asked about {on}.")
        keys = [(entity, field), (entity, ENTITY_DEFAULT)] if field else [(entity, field)]
        for key in keys:
            starts = self._starts.get(key)
            if starts is None:
                continue
            index = bisect_right(starts, on) - 1
            if index >= 0 and self._rules[key][index].applies_on(on):
                return self._rules[key][index]
        return None

    def owner(self, entity: str, field: str, on: dt.date) -> str | None:
        """The system owning `entity`.`field` on `on` (blank field: the entity), or None."""
        rule = self.rule_for(entity, field, on)
        return None if rule is None else rule.owner_system


@dataclass(frozen=True, slots=True)
class RefusedChange:
    """A change a non-owner attempted to an owned field: reported, never silently applied."""

    field: str
    attempted: Any
    current: Any
    owner_system: str
    source_system: str


@dataclass(frozen=True, slots=True)
class MergeResult:
    """What an incoming record does to the current one, field by field.

    Every incoming field is in exactly one of `applied` (new values to write), `refused`
    and `unchanged` (same value as now).
    """

    applied: dict[str, Any] = field(default_factory=dict)
    refused: list[RefusedChange] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def merged(self, current: Mapping[str, Any]) -> dict[str, Any]:
        """`current` with the applied changes: the record to write."""
        return {**current, **self.applied}


def ownership_merge(
    *,
    entity: str,
    current: Mapping[str, Any],
    incoming: Mapping[str, Any],
    source_system: str,
    book: OwnershipBook,
    on: dt.date,
) -> MergeResult:
    """Split `source_system`'s `incoming` values for an `entity` into applied, refused, unchanged.

    A changed field is applied when `source_system` owns it on `on` or nobody does; otherwise
    it is refused and reported with its owner. Pure and deterministic; raises only for a bad
    `on` (see OwnershipBook.rule_for).
    """
    result = MergeResult()
    for name, value in incoming.items():
        now = current.get(name)
        if now == value:
            result.unchanged.append(name)
            continue
        owner = book.owner(entity, name, on)
        if owner is None or owner == source_system:
            result.applied[name] = value
        else:
            result.refused.append(
                RefusedChange(
                    field=name,
                    attempted=value,
                    current=now,
                    owner_system=owner,
                    source_system=source_system,
                )
            )
    return result
