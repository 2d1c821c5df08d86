"""Open exception groups a published mapping version clears: the replay offer after publishing.

A root-cause group is the open items of one signature of (queue, code, cause)
(`exception_items.root_cause_signature`). The codes a mapping set's missing value raises —
which codes, the caller says (`portal.exceptions.FIX_MAPPING_SETS`) — name that value as their
cause (LEGAL_ENTITY_UNMAPPED: "LB-NL"). A version clears the groups of those codes whose cause
is a source value it adds or changes against the version published before it: the groups
waiting for *this* version (a value an earlier version already mapped was offered on that
version's page).

Set-based, not a dry run: a version's values make a handful of signatures, and the groups are
read on the open items' root-cause index (`exception_open_by_cause`) in one GROUP BY, whatever
the number of items, so the page can show it on every visit. What it cannot see is a record's
date: a record dated before the version's effective date keeps the version in force then and
stays parked on replay (the replay says how many it resolved).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import BigIntegerField, Count, F, Sum
from django.db.models.functions import Cast, Round

from sync.mappings.models import MappingVersion
from sync.mappings.selectors import mapping_versions_diff
from sync.pipeline.exception_items import root_cause_signature
from sync.pipeline.models import ExceptionItem
from sync.pipeline.models.exception_items import Queue

_CENTS = Decimal("0.01")
SIGNATURES_PER_QUERY = 5000
Status = MappingVersion.Status


@dataclass(frozen=True)
class ClearedGroup:
    """One open root-cause group a version's rows clear: how many items, what they risk."""

    root_cause: str
    queue: str
    code: str
    cause: str
    items: int
    money: list[tuple[str, Decimal]] = field(default_factory=list)  # (currency, amount)

    @property
    def queue_label(self) -> str:
        return Queue(self.queue).label


@dataclass(frozen=True)
class ReplayOffer:
    """What publishing `version` made replayable: the rows it adds or changes against
    `previous` (None: the set's first published version) and the open groups they clear."""

    version: MappingVersion
    previous: MappingVersion | None
    values: tuple[str, ...]
    groups: list[ClearedGroup]

    @property
    def items(self) -> int:
        return sum(g.items for g in self.groups)


def mapping_version_previous(*, version: MappingVersion) -> MappingVersion | None:
    """The version of `version`'s set published before it (published or retired since): the
    highest-numbered one below it, or None. One query."""
    return (
        MappingVersion.objects.filter(
            mapping_set_id=version.mapping_set_id,
            number__lt=version.number,
            status__in=[Status.PUBLISHED, Status.RETIRED],
        )
        .order_by("-number")
        .first()
    )


def mapping_version_replay_offer(
    *,
    version: MappingVersion,
    codes: Collection[str],
    legal_entities: Collection[str] | None = None,
) -> ReplayOffer:
    """The open groups of `codes` whose cause is a source value `version` adds or changes
    against the version published before it, most items first; counted over the items of
    `legal_entities` (and of no known entity) when given, as the reader's queues are. A read:
    four queries."""
    previous = mapping_version_previous(version=version)
    if previous is None:
        values = tuple(
            version.entries.order_by("source_value").values_list("source_value", flat=True)
        )
    else:
        diff = mapping_versions_diff(old=previous, new=version)
        values = tuple(sorted(c.source_value for c in [*diff.added, *diff.changed]))
    groups = (
        exception_groups_of_causes(codes=codes, causes=values, legal_entities=legal_entities)
        if codes and values
        else []
    )
    return ReplayOffer(version=version, previous=previous, values=values, groups=groups)


def exception_groups_of_causes(
    *,
    codes: Collection[str],
    causes: Collection[str],
    legal_entities: Collection[str] | None = None,
) -> list[ClearedGroup]:
    """The open root-cause groups, in any queue, of one of `codes` with one of `causes`: item
    count and money at risk per currency (summed in integer cents, so SQLite's floating-point
    SUM cannot drift a cent), most items first. One GROUP BY over the groups' signatures (per
    SIGNATURES_PER_QUERY of them)."""
    signatures = {
        root_cause_signature(queue=queue, code=code, cause=cause): (queue, code, cause)
        for queue in Queue.values
        for code in codes
        for cause in causes
    }
    counts: dict[str, int] = {}
    money: dict[str, list[tuple[str, Decimal]]] = {}
    wanted = list(signatures)
    items = ExceptionItem.objects.filter(status__in=ExceptionItem.OPEN_STATUSES)
    if legal_entities is not None:
        items = items.filter(legal_entity__in=[*legal_entities, ""])
    # A first version of a large set makes many signatures: read them a slice at a time (a
    # slice's groups are its own, so the sums add up), within SQLite's bound-parameter limit.
    for start in range(0, len(wanted), SIGNATURES_PER_QUERY):
        rows = (
            items.filter(root_cause__any=wanted[start : start + SIGNATURES_PER_QUERY])
            .values("root_cause", "currency")
            .annotate(
                items=Count("id"),
                cents=Sum(Cast(Round(F("money_at_risk") * 100), BigIntegerField())),
            )
            .order_by()
        )
        for row in rows:
            cause = row["root_cause"]
            counts[cause] = counts.get(cause, 0) + row["items"]
            if row["cents"] is not None:
                money.setdefault(cause, []).append(
                    (row["currency"], Decimal(row["cents"]) * _CENTS)
                )
    groups = []
    for root_cause, items in counts.items():
        queue, code, cause = signatures[root_cause]
        amounts = sorted(money.get(root_cause, []), key=lambda pair: (-pair[1], pair[0]))
        groups.append(ClearedGroup(root_cause, queue, code, cause, items, amounts))
    groups.sort(key=lambda g: (-g.items, g.cause, g.queue))
    return groups
