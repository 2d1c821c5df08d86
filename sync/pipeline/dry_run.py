"""Dry run of a mapping draft: what would change if it were published (issue #15, /mappings/).

`mapping_version_dry_run(version=…)` reads the last `limit` inbox payloads (newest first,
whatever their status) of the flows that read the version's mapping set, and judges each
record twice with the flow's own pure path — the Kantata reader, `time_references_preload`,
`time_entry_resolve`, `rules_check`, `ownership_merge` — once with the published mapping
tables and once with the draft in its set's place. It never writes: no flow, no batch, no
savepoint; the two `MappingTable`s are built here and swapped into the preload.

Which flows (`FLOWS`): time posting (`psa`/`time_entries`) reads the legal-entity and the
currency sets; the PSA workspace flow (`psa`/`workspaces`, master_data/psa.py) reads the
legal-entity set, to choose between two parked codes for a workspace with no project
(LEGAL_ENTITY_UNMAPPED or PROJECT_NOT_PROVISIONED, `psa.workspace_entity_unmapped`), on the
day processed. The last `limit` payloads of each flow are read.

The draft's place: as publishing it would, the draft becomes its set's version effective from
its planned date (today when it has none); a published version of the set effective from the
same date is replaced by it, the others stay (records dated before the draft keep theirs).

Cost: a fixed number of queries whatever `limit` (the inbox read, two for the mapping
versions and entries, the preload's, one for the open exception items).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from django.db.models import Q
from django.utils import timezone

from sync.errors import PayloadError
from sync.integrations.kantata.time_entries import ParsedTime, time_entry_read
from sync.mappings.models import MappingEntry, MappingVersion
from sync.mappings.ownership import ownership_merge
from sync.mappings.resolve import MappingTable
from sync.models import TimeEntry
from sync.pipeline.connection_services import erp_connection_get
from sync.pipeline.master_data import psa
from sync.pipeline.models import ExceptionItem, InboxItem
from sync.pipeline.models.exception_items import Stage
from sync.pipeline.rules import money_at_risk, rules_check
from sync.pipeline.time_posting.flow import ENTITY, INBOX_ENTITY, RECORD_KEY_PREFIX
from sync.pipeline.time_posting.references import (
    CURRENCY_SET,
    LEGAL_ENTITY_SET,
    SOURCE_SYSTEM,
    Preload,
    Resolved,
    time_entry_resolve,
    time_references_preload,
)
from sync.pipeline.time_posting.writers import OWNED_FIELDS

DEFAULT_LIMIT = 1000
MAX_LIMIT = 100_000
TIME_POSTING_SETS = (LEGAL_ENTITY_SET, CURRENCY_SET)
TIME_POSTING, WORKSPACES = "time posting", "PSA workspaces"
WORKSPACE_ENTITY = "workspaces"
ENTRY_CHUNK = 5000

POST, UPDATE, UNCHANGED, LINK, PARK = "post", "update", "unchanged", "link", "park"
SUCCESS = frozenset({POST, UPDATE, UNCHANGED, LINK})
_LABELS = {
    POST: "would post",
    UPDATE: "would update",
    UNCHANGED: "unchanged",
    LINK: "would link (already in the ERP)",
}


@dataclass(frozen=True)
class Outcome:
    """What the flow would do with a record: post, update, leave unchanged, link, or park."""

    kind: str
    code: str = ""  # the exception code when parked

    @property
    def success(self) -> bool:
        return self.kind in SUCCESS

    def __str__(self) -> str:
        return f"parked {self.code}" if self.kind == PARK else _LABELS[self.kind]


@dataclass(frozen=True)
class FieldChange:
    name: str
    before: str
    after: str


@dataclass(frozen=True)
class RecordChange:
    """One record whose outcome or written fields the draft would change."""

    flow: str
    external_id: str
    inbox_id: int
    work_date: dt.date | None  # a time entry's; None for a workspace
    before: Outcome
    after: Outcome
    fields: tuple[FieldChange, ...]
    amount: Decimal | None  # a time entry's hours times bill rate
    currency: str
    clears: tuple[str, ...] = ()  # codes of the open exception items it would clear
    creates: str = ""  # the code of the exception item it would open ("": none)

    @property
    def outcome_changed(self) -> bool:
        return self.before != self.after


@dataclass
class ExceptionTotal:
    """Exception items of one code: how many, and the money at risk per currency."""

    code: str
    count: int = 0
    money: dict[str, Decimal] = field(default_factory=dict)

    def add(self, amount: Decimal | None, currency: str) -> None:
        self.count += 1
        if amount is not None:
            self.money[currency] = self.money.get(currency, Decimal(0)) + amount

    @property
    def money_sorted(self) -> list[tuple[str, Decimal]]:
        return sorted(self.money.items())


@dataclass
class DryRun:
    version: MappingVersion
    limit: int
    effective_from: dt.date  # the day the draft is tried from
    flows: tuple[str, ...]  # the flows judged; empty: none reads the set
    items_read: int = 0  # inbox items read
    records: int = 0  # distinct records among them (the newest payload of each is judged)
    changes: list[RecordChange] = field(default_factory=list)
    clears: list[ExceptionTotal] = field(default_factory=list)
    creates: list[ExceptionTotal] = field(default_factory=list)

    @property
    def outcomes_changed(self) -> int:
        return sum(1 for c in self.changes if c.outcome_changed)

    @property
    def clears_count(self) -> int:
        return sum(t.count for t in self.clears)

    @property
    def creates_count(self) -> int:
        return sum(t.count for t in self.creates)


def mapping_version_dry_run(
    *, version: MappingVersion, limit: int = DEFAULT_LIMIT, today: dt.date | None = None
) -> DryRun:
    """What publishing `version` would change for the last `limit` inbox payloads of each flow
    that reads its set. See the module docstring. Reads only; a fixed number of queries."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    today = today or timezone.localdate()
    slug = version.mapping_set.slug
    effective = version.effective_from or today
    flows = [name for name, (_, _, sets, _) in FLOWS.items() if slug in sets]
    result = DryRun(version=version, limit=limit, effective_from=effective, flows=tuple(flows))
    if not flows:
        return result
    published, drafted = _tables(version=version, effective=effective)
    judged: list[_Judged] = []
    for name in flows:
        entity, judge, _, _ = FLOWS[name]
        rows = list(
            InboxItem.objects.filter(system=SOURCE_SYSTEM, entity=entity)
            .order_by("-id")
            .values_list("id", "payload")[:limit]
        )
        result.items_read += len(rows)
        judged.extend(judge(rows, published, drafted, today, result))
    if not judged:
        return result

    open_items: dict[str, list[tuple[str, str, Decimal | None, str]]] = defaultdict(list)
    for key, code, stage, amount, currency in ExceptionItem.objects.filter(
        record_key__any=[j.record_key for j in judged],
        status__in=ExceptionItem.OPEN_STATUSES,
    ).values_list("record_key", "code", "stage", "money_at_risk", "currency"):
        open_items[key].append((code, stage, amount, currency))

    clears: dict[str, ExceptionTotal] = {}
    creates: dict[str, ExceptionTotal] = {}
    for j in judged:
        change = j.change
        items = open_items.get(j.record_key, [])
        cleared: list[str] = []
        created = ""
        if change.outcome_changed and change.after.success:
            # A record that passes closes its open items of the flow's close stages.
            for code, stage, amount, currency in items:
                if stage in FLOWS[change.flow][3]:
                    clears.setdefault(code, ExceptionTotal(code)).add(amount, currency)
                    cleared.append(code)
        elif change.outcome_changed and not any(code == change.after.code for code, *_ in items):
            created = change.after.code
            creates.setdefault(created, ExceptionTotal(created)).add(
                j.create_amount, change.currency
            )
        result.changes.append(dataclasses.replace(change, clears=tuple(cleared), creates=created))
    # Outcome changes first, then the rest; each by flow and external id.
    result.changes.sort(key=lambda c: (not c.outcome_changed, c.flow, c.external_id))
    result.clears = sorted(clears.values(), key=lambda t: t.code)
    result.creates = sorted(creates.values(), key=lambda t: t.code)
    return result


class _Judged(NamedTuple):
    record_key: str
    change: RecordChange  # clears/creates not known yet
    create_amount: Decimal | None  # the money at risk an item it opens would record


def _newest(rows: list[tuple[int, object]], read) -> dict[str, tuple[int, object]]:
    """{external id: (inbox id, record)} of the newest readable payload of each record (what a
    replay would judge); a payload the reader refuses is malformed whatever the mapping."""
    newest: dict[str, tuple[int, object]] = {}
    for inbox_id, payload in rows:
        try:
            record = read(payload)
        except PayloadError:
            continue
        newest.setdefault(record.external_id, (inbox_id, record))
    return newest


def _time_entries(
    rows, published: MappingTable, drafted: MappingTable, today: dt.date, result: DryRun
) -> list[_Judged]:
    newest = _newest(rows, time_entry_read)
    result.records += len(newest)
    approved = [(i, p) for i, p in newest.values() if p.approved]  # the rest: unchanged
    if not approved:
        return []
    pre = time_references_preload(
        parsed=[p for _, p in approved], today=today, erp=erp_connection_get()
    )
    before_pre = dataclasses.replace(pre, mappings=published, days={})
    after_pre = dataclasses.replace(pre, mappings=drafted, days={})
    judged = []
    for inbox_id, p in approved:
        before, resolved_before = _judge(p, before_pre, today)
        after, resolved_after = _judge(p, after_pre, today)
        fields = _field_changes(resolved_before, resolved_after)
        if before != after or fields:
            change = RecordChange(
                flow=TIME_POSTING,
                external_id=p.external_id,
                inbox_id=inbox_id,
                work_date=p.work_date,
                before=before,
                after=after,
                fields=fields,
                amount=_at_risk(p),
                currency=p.currency,
            )
            judged.append(
                _Judged(
                    RECORD_KEY_PREFIX + p.external_id, change, _at_risk(p) if p.billable else None
                )
            )
    return judged


def _workspaces(
    rows, published: MappingTable, drafted: MappingTable, today: dt.date, result: DryRun
) -> list[_Judged]:
    """PSA workspaces without a project: LEGAL_ENTITY_UNMAPPED or PROJECT_NOT_PROVISIONED, by
    the legal-entity version effective on the day processed (`psa.workspace_plan`)."""
    newest = _newest(rows, psa.workspace_parse)
    result.records += len(newest)
    if not newest:
        return []
    refs = psa.workspace_references_load([p for _, p in newest.values()])

    def judge(p, mappings: MappingTable) -> tuple[Outcome, str | None]:
        entity = p.fields["legal_entity"]
        found = mappings.lookup(LEGAL_ENTITY_SET, entity, today) if entity else None
        subsidiary = found.target_value if found else None
        if refs.project(p) is not None:
            return Outcome(LINK), subsidiary
        if psa.workspace_entity_unmapped(p, refs, mappings, today):
            return Outcome(PARK, "LEGAL_ENTITY_UNMAPPED"), subsidiary
        return Outcome(PARK, "PROJECT_NOT_PROVISIONED"), subsidiary

    judged = []
    for inbox_id, p in newest.values():
        before, old = judge(p, published)
        after, new = judge(p, drafted)
        if before == after:
            continue  # a linked workspace writes no subsidiary
        fields = (FieldChange("subsidiary", _text(old), _text(new)),) if old != new else ()
        change = RecordChange(
            flow=WORKSPACES,
            external_id=p.external_id,
            inbox_id=inbox_id,
            work_date=None,
            before=before,
            after=after,
            fields=fields,
            amount=None,
            currency="",
        )
        judged.append(_Judged(f"{psa.SYSTEM}:{WORKSPACE_ENTITY}:{p.external_id}", change, None))
    return judged


def _tables(*, version: MappingVersion, effective: dt.date) -> tuple[MappingTable, MappingTable]:
    """(published, with the draft in place) tables of the sets time posting reads: two
    queries, the versions then their entries."""
    heads = list(
        MappingVersion.objects.filter(
            Q(status=MappingVersion.Status.PUBLISHED, mapping_set__slug__in=TIME_POSTING_SETS)
            | Q(pk=version.pk)
        ).values_list("id", "mapping_set__slug", "number", "effective_from")
    )
    entries = list(
        MappingEntry.objects.filter(version_id__in=[h[0] for h in heads])
        .values_list("version_id", "source_value", "target_value", "attributes")
        .iterator(chunk_size=ENTRY_CHUNK)
    )
    slug = version.mapping_set.slug
    is_published = version.status == MappingVersion.Status.PUBLISHED
    published = [h for h in heads if h[0] != version.pk or is_published]
    drafted = [
        *(h for h in published if h[0] != version.pk and not (h[1] == slug and h[3] == effective)),
        (version.pk, slug, version.number, effective),
    ]
    return (
        MappingTable.from_rows(versions=published, entries=entries),
        MappingTable.from_rows(versions=drafted, entries=entries),
    )


def _judge(p: ParsedTime, pre: Preload, today: dt.date) -> tuple[Outcome, Resolved]:
    """The outcome `time_posting.flow._post` would give `p` with `pre`, without writing."""
    resolved = time_entry_resolve(p, pre)
    existing = pre.existing.get(p.external_id)
    if (
        p.external_id in pre.posted
        and existing is None
        and resolved.project
        and resolved.task
        and resolved.worker
        and p.currency in pre.currencies
    ):
        return Outcome(LINK), resolved
    broken = rules_check(resolved.facts)
    if broken:
        return Outcome(PARK, broken[0].rule.code), resolved
    if existing is None:
        return Outcome(POST), resolved
    if not _changed(p, existing, resolved, pre=pre, today=today):
        return Outcome(UNCHANGED), resolved
    if existing.status in TimeEntry.FROZEN_STATUSES:
        return Outcome(PARK, "POSTED_ENTRY_CHANGED"), resolved
    return Outcome(UPDATE), resolved


def _changed(
    p: ParsedTime, existing: TimeEntry, resolved: Resolved, *, pre: Preload, today: dt.date
) -> bool:
    """Whether the flow would write a new version of `existing` (flow._changes, read only)."""
    if resolved.versions != existing.mapping_versions:
        return True
    incoming = {
        "work_date": p.work_date,
        "hours": p.hours,
        "billable": p.billable,
        "bill_rate": p.rate,
        "currency": p.currency,
    }
    current = {
        name: getattr(existing, TimeEntry._meta.get_field(name).attname) for name in OWNED_FIELDS
    }
    merge = ownership_merge(
        entity=ENTITY,
        current=current,
        incoming=incoming,
        source_system=SOURCE_SYSTEM,
        book=pre.ownership,
        on=today,
    )
    return bool(merge.applied)


def _field_changes(before: Resolved, after: Resolved) -> tuple[FieldChange, ...]:
    """What would be written differently: the ERP subsidiary and currency, the versions."""
    changes = []
    for name, old, new in (
        ("subsidiary", before.subsidiary, after.subsidiary),
        ("ERP currency", before.erp_currency, after.erp_currency),
        ("mapping versions", _versions(before.versions), _versions(after.versions)),
    ):
        if old != new:
            changes.append(FieldChange(name, _text(old), _text(new)))
    return tuple(changes)


def _versions(versions: dict[str, int]) -> str:
    return ", ".join(f"{slug} v{number}" for slug, number in sorted(versions.items()))


def _text(value: object) -> str:
    return "—" if value in (None, "") else str(value)


def _at_risk(p: ParsedTime) -> Decimal | None:
    return money_at_risk(hours=p.hours, bill_rate=p.rate)


# flow → (its PSA inbox entity, its judge, the mapping sets it reads, the stages a record
# that passes closes: the flow's `close_stages`).
FLOWS = {
    TIME_POSTING: (INBOX_ENTITY, _time_entries, TIME_POSTING_SETS, (Stage.VALIDATE,)),
    WORKSPACES: (
        WORKSPACE_ENTITY,
        _workspaces,
        (psa.LEGAL_ENTITY_SET,),
        (Stage.PARSE, Stage.MAP, Stage.VALIDATE),
    ),
}
