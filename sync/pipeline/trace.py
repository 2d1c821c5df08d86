"""One correlation id followed through every table that carries it: a read-only selector.

`trace_for` returns the inbox items, canonical records (with their external references),
deliveries and exception items of one correlation id as plain frozen dataclasses, merged in
time order. No payload is read: a trace says what happened and where, and a page that shows it
has nothing to redact. The portal's trace page renders it; quote-to-cash reuses it.

Bounded: one query per table, each capped at `TRACE_LIMIT` rows (the kinds that hit the cap
are named in `Trace.capped`), plus one query for the references of the records found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q

from sync.models import CANONICAL_MODELS, ExternalRef
from sync.pipeline.models import Delivery, ExceptionItem, InboxItem

TRACE_LIMIT = 500  # rows per kind
CORRELATION_ID_MAX = 64  # every correlation_id column's max_length

INBOX, RECORD, DELIVERY, EXCEPTION = "inbox", "record", "delivery", "exception"
KIND_LABELS = {
    INBOX: "inbox items",
    RECORD: "canonical records",
    DELIVERY: "deliveries",
    EXCEPTION: "exception items",
}
# Canonical models whose records a trace lists: every one but ExternalRef, whose rows are shown
# under the record they belong to.
TRACED_MODELS = tuple(model for model in CANONICAL_MODELS if model is not ExternalRef)


@dataclass(frozen=True)
class TraceInboxItem:
    pk: int
    system: str
    entity: str
    external_id: str
    status: str
    received_at: datetime


@dataclass(frozen=True)
class TraceRef:
    """A record's id in one external system."""

    system: str
    external_id: str
    status: str
    last_synced_at: datetime | None


@dataclass(frozen=True)
class TraceRecord:
    model: str  # app_label.model_name
    model_name: str  # the model's verbose name
    pk: str
    status: str
    created_at: datetime
    updated_at: datetime
    refs: tuple[TraceRef, ...]


@dataclass(frozen=True)
class TraceDelivery:
    pk: int
    operation: str
    connection: str
    system: str
    external_id: str  # the key the target knows the record by
    target_id: str  # the target's own id, once delivered
    state: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class TraceException:
    pk: int
    queue: str
    queue_label: str
    code: str
    stage: str
    status: str
    record_key: str
    first_failed_at: datetime
    last_failed_at: datetime


@dataclass(frozen=True)
class TraceEvent:
    """One row of the merged timeline: `kind` says which of the four `row` is."""

    at: datetime
    kind: str
    row: TraceInboxItem | TraceRecord | TraceDelivery | TraceException


@dataclass(frozen=True)
class Trace:
    correlation_id: str
    inbox_items: tuple[TraceInboxItem, ...]
    records: tuple[TraceRecord, ...]
    deliveries: tuple[TraceDelivery, ...]
    exception_items: tuple[TraceException, ...]
    events: tuple[TraceEvent, ...]  # all of the above, oldest first
    capped: tuple[str, ...]  # kinds with more rows than TRACE_LIMIT (only the first are here)
    limit: int = TRACE_LIMIT

    @property
    def empty(self) -> bool:
        return not self.events

    @property
    def external_ids(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(system, the ids this trace's records have there), systems and ids sorted."""
        found: dict[str, set[str]] = {}
        for item in self.inbox_items:
            found.setdefault(item.system, set()).add(item.external_id)
        for record in self.records:
            for ref in record.refs:
                found.setdefault(ref.system, set()).add(ref.external_id)
        for delivery in self.deliveries:
            ids = found.setdefault(delivery.system, set())
            ids.update(i for i in (delivery.external_id, delivery.target_id) if i)
        return tuple((system, tuple(sorted(ids))) for system, ids in sorted(found.items()))


def _capped(rows: list, kind: str, capped: list[str]) -> list:
    if len(rows) > TRACE_LIMIT:
        capped.append(kind)
    return rows[:TRACE_LIMIT]


def _inbox_items(correlation_id: str, capped: list[str]) -> list[TraceInboxItem]:
    rows = list(
        InboxItem.objects.filter(correlation_id=correlation_id)  # index inbox_correlation
        .order_by("received_at", "pk")
        .values_list("pk", "system", "entity", "external_id", "status", "received_at")[
            : TRACE_LIMIT + 1
        ]
    )
    return [TraceInboxItem(*row) for row in _capped(rows, INBOX, capped)]


def _deliveries(correlation_id: str, capped: list[str]) -> list[TraceDelivery]:
    rows = list(
        Delivery.objects.filter(correlation_id=correlation_id)  # index delivery_correlation
        .order_by("created_at", "pk")
        .values_list(
            "pk",
            "operation",
            "connection__name",
            "connection__system",
            "external_id",
            "target_id",
            "state",
            "attempts",
            "created_at",
            "delivered_at",
        )[: TRACE_LIMIT + 1]
    )
    return [TraceDelivery(*row) for row in _capped(rows, DELIVERY, capped)]


def _exception_items(
    correlation_id: str,
    queues: Sequence[str] | None,
    legal_entities: Sequence[str] | None,
    capped: list[str],
) -> list[TraceException]:
    found = ExceptionItem.objects.filter(correlation_id=correlation_id)  # indexed column
    if queues is not None:
        found = found.filter(queue__in=list(queues))
    if legal_entities is not None:
        found = found.filter(legal_entity__in=[*legal_entities, ""])
    rows = list(
        found.order_by("first_failed_at", "pk").values_list(
            "pk",
            "queue",
            "code",
            "stage",
            "status",
            "record_key",
            "first_failed_at",
            "last_failed_at",
        )[: TRACE_LIMIT + 1]
    )
    labels = dict(ExceptionItem._meta.get_field("queue").choices)
    return [
        TraceException(
            pk=pk,
            queue=queue,
            queue_label=str(labels.get(queue, queue)),
            code=code,
            stage=stage,
            status=status,
            record_key=record_key,
            first_failed_at=first,
            last_failed_at=last,
        )
        for pk, queue, code, stage, status, record_key, first, last in _capped(
            rows, EXCEPTION, capped
        )
    ]


def _records(correlation_id: str, capped: list[str]) -> list[TraceRecord]:
    """Canonical records carrying the id, in dependency order (reference data, then commercial,
    delivery, transactions, billing), `TRACE_LIMIT` in all, with their external references.

    The canonical tables do not index `correlation_id` (docs/decisions.md #18: each index is
    paid on every posting), so each of these queries reads its table; the limit bounds what is
    returned, not what is read. Fine for a page opened by hand, not for a loop.
    """
    found: list[tuple[type, tuple]] = []
    for model in TRACED_MODELS:
        room = TRACE_LIMIT + 1 - len(found)
        if room <= 0:
            break
        rows = (
            model._default_manager.filter(correlation_id=correlation_id)
            .order_by("created_at", "pk")
            .values_list("pk", model.STATUS_FIELD, "created_at", "updated_at")[:room]
        )
        found += [(model, row) for row in rows]
    found = _capped(found, RECORD, capped)
    refs = _refs_of([(model, row[0]) for model, row in found])
    return [
        TraceRecord(
            model=model._meta.label_lower,
            model_name=str(model._meta.verbose_name),
            pk=str(pk),
            status=status,
            created_at=created_at,
            updated_at=updated_at,
            refs=tuple(refs.get((model._meta.label_lower, str(pk)), ())),
        )
        for model, (pk, status, created_at, updated_at) in found
    ]


def _refs_of(records: list[tuple[type, object]]) -> dict[tuple[str, str], list[TraceRef]]:
    """The external references of `records` ((model, pk) pairs), by (model label, pk): one
    query, at most one ref per system and record (a unique constraint)."""
    if not records:
        return {}
    types = ContentType.objects.get_for_models(*{model for model, _ in records})
    by_type: dict[int, list[str]] = {}
    for model, pk in records:
        by_type.setdefault(types[model].pk, []).append(str(pk))
    label_of = {types[model].pk: model._meta.label_lower for model in types}
    match = Q()
    for type_id, pks in by_type.items():
        match |= Q(content_type_id=type_id, object_id__in=pks)
    # Naming every system lets the unique index (system, content type, object id) serve the
    # look-up: it leads with the system.
    rows = (
        ExternalRef.objects.filter(match, system__in=ExternalRef.System.values)
        .order_by("system")
        .values_list(
            "content_type_id", "object_id", "system", "external_id", "status", "last_synced_at"
        )
    )
    refs: dict[tuple[str, str], list[TraceRef]] = {}
    for type_id, object_id, system, external_id, status, synced in rows:
        refs.setdefault((label_of[type_id], object_id), []).append(
            TraceRef(system=system, external_id=external_id, status=status, last_synced_at=synced)
        )
    return refs


_KIND_ORDER = {INBOX: 0, RECORD: 1, DELIVERY: 2, EXCEPTION: 3}


def trace_for(
    *,
    correlation_id: str,
    queues: Sequence[str] | None = None,
    legal_entities: Sequence[str] | None = None,
) -> Trace:
    """Everything that carries `correlation_id`, oldest first. Read-only.

    `queues` limits the exception items to those queues (a person sees only the queues they
    work); None: every queue. `legal_entities` limits them to those entities' items and the
    items of no known entity; None: every entity. An id nothing carries gives an empty trace.
    Raises ValueError for an id longer than any correlation id column holds.
    """
    if len(correlation_id) > CORRELATION_ID_MAX:
        raise ValueError(f"a correlation id has at most {CORRELATION_ID_MAX} characters")
    capped: list[str] = []
    inbox = _inbox_items(correlation_id, capped)
    records = _records(correlation_id, capped)
    deliveries = _deliveries(correlation_id, capped)
    exceptions = _exception_items(correlation_id, queues, legal_entities, capped)
    events = [
        *(TraceEvent(at=i.received_at, kind=INBOX, row=i) for i in inbox),
        *(TraceEvent(at=r.created_at, kind=RECORD, row=r) for r in records),
        *(TraceEvent(at=d.created_at, kind=DELIVERY, row=d) for d in deliveries),
        *(TraceEvent(at=e.first_failed_at, kind=EXCEPTION, row=e) for e in exceptions),
    ]
    # Ties (a record and its delivery written in one transaction) read in pipeline order.
    events.sort(key=lambda event: (event.at, _KIND_ORDER[event.kind]))
    return Trace(
        correlation_id=correlation_id,
        inbox_items=tuple(inbox),
        records=tuple(records),
        deliveries=tuple(deliveries),
        exception_items=tuple(exceptions),
        events=tuple(events),
        capped=tuple(capped),
    )
