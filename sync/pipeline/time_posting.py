"""Approved PSA time entries → canonical TimeEntry → one ERP labour posting each, or an exception.

One batch, one transaction: parse every inbox payload, resolve references with a fixed number
of queries, map with the published versions effective for each entry's date, apply field
ownership, check the business rules, upsert the canonical records with history (actor = the
run) and external references, and write one outbox delivery per changed record version. A
record that fails any step becomes an exception item in its owner's queue; nothing is dropped
and nothing is half-written.

Idempotent: re-processing the same payloads changes nothing (same values → no new version → the
delivery's idempotency key exists already); a changed entry gets a new version and a new
delivery that upserts the same ERP record (external id `KT-TE-<PSA id>`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from django.contrib.contenttypes.models import ContentType
from django.db import connections, router, transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from sync.audit import acting_as, audited_bulk_create, audited_bulk_update
from sync.mappings.ownership import OwnershipBook, ownership_merge
from sync.mappings.resolve import MappingTable
from sync.mappings.selectors import mapping_tables_load, ownership_book_load
from sync.models import (
    AccountingPeriod,
    ExternalRef,
    Project,
    RolePlaceholder,
    Task,
    TimeEntry,
    Worker,
)
from sync.models.transactions import ApprovalStatus
from sync.pipeline.exceptions import Failure, exception_items_close_for, exception_items_raise
from sync.pipeline.models import Connection, Delivery, InboxItem, SyncRun
from sync.pipeline.models.exceptions import Queue, Stage
from sync.pipeline.outbox import deliveries_enqueue
from sync.pipeline.rules import Facts, money_at_risk, rules_check

SOURCE_SYSTEM = "psa"
ENTITY = "time_entry"
OPERATION = "erp.time_bill.upsert"
ERP_KEY_PREFIX = "KT-TE-"
LEGAL_ENTITY_SET = "legal-entity"
CURRENCY_SET = "currency"
MAX_TEXT = 255
MAX_MINUTES_PER_DAY = 24 * 60
# Fields the PSA sends that Ledgerbridge keeps on the canonical time entry.
OWNED_FIELDS = ("work_date", "hours", "billable", "bill_rate", "currency")


class PayloadError(ValueError):
    """The payload is not a time entry we can read; the message says exactly why."""


@dataclass(frozen=True)
class ParsedTime:
    external_id: str
    workspace_id: str
    story_id: str
    user_id: str
    work_date: dt.date
    minutes: int
    billable: bool
    approved: bool
    rate: Decimal
    currency: str

    @property
    def hours(self) -> Decimal:
        return (Decimal(self.minutes) / Decimal(60)).quantize(Decimal("0.01"))


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if value is None or value == "":
        raise PayloadError(f"`{name}` is missing.")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"`{name}` must be an id (text or integer), got {type(value).__name__}.")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise PayloadError(f"`{name}` is {len(text)} characters long; at most {MAX_TEXT}.")
    return text


def time_payload_parse(payload: Any) -> ParsedTime:
    """Read a Kantata time entry strictly. Raises PayloadError naming every field it refuses."""
    if not isinstance(payload, dict):
        raise PayloadError("The payload is not a JSON object.")
    errors: list[str] = []

    def take(fn, *args):
        try:
            return fn(*args)
        except PayloadError as exc:
            errors.append(str(exc))
            return None

    external_id = take(_text, payload, "id")
    workspace_id = take(_text, payload, "workspace_id")
    story_id = take(_text, payload, "story_id")
    user_id = take(_text, payload, "user_id")
    work_date = take(_date, payload.get("date_performed"))
    minutes = take(_minutes, payload.get("time_in_minutes"))
    billable = take(_bool, payload, "billable")
    approved = take(_bool, payload, "approved")
    rate = take(_cents, payload.get("rate_in_cents"))
    currency = take(_currency, payload.get("currency"))
    if errors:
        raise PayloadError(" ".join(errors))
    return ParsedTime(
        external_id=external_id, workspace_id=workspace_id, story_id=story_id, user_id=user_id,
        work_date=work_date, minutes=minutes, billable=billable, approved=approved, rate=rate,
        currency=currency,
    )


def _date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise PayloadError("`date_performed` must be a YYYY-MM-DD date.")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise PayloadError(f"`date_performed` {value[:40]!r} is not a YYYY-MM-DD date.") from exc


def _minutes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError("`time_in_minutes` must be a whole number of minutes.")
    if not 0 < value <= MAX_MINUTES_PER_DAY:
        raise PayloadError(f"`time_in_minutes` {value} is outside 1..{MAX_MINUTES_PER_DAY}.")
    return value


def _bool(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name)
    if not isinstance(value, bool):
        raise PayloadError(f"`{name}` must be true or false.")
    return value


def _cents(value: Any) -> Decimal:
    if value is None:
        return Decimal("0.00")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError("`rate_in_cents` must be a non-negative whole number of cents.")
    try:
        return (Decimal(value) / 100).quantize(Decimal("0.01"))
    except InvalidOperation as exc:  # pragma: no cover - ints always convert
        raise PayloadError("`rate_in_cents` is not a number.") from exc


def _currency(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise PayloadError("`currency` must be a three-letter ISO 4217 code.")
    return value.upper()


@dataclass
class ProcessCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0
    failed: int = 0
    deliveries: int = 0
    failures: list[Failure] = field(default_factory=list)


@dataclass
class _Preload:
    """Everything the batch needs, loaded with a fixed number of queries."""

    projects: dict[str, Project]
    tasks: dict[str, Task]
    workers: dict[str, Worker]
    placeholders: set[str]
    existing: dict[str, TimeEntry]
    periods: dict[int, list[AccountingPeriod]]
    erp_refs: dict[tuple[str, str], str]
    mappings: MappingTable
    ownership: OwnershipBook


def _in(values: Any, sql_type: str) -> Any:
    """The right-hand side of an `__in` filter over many values.

    On PostgreSQL one array parameter (`IN (SELECT unnest(%s::<type>[]))`): a batch's thousands
    of ids otherwise become thousands of placeholders that the driver parses on every query.
    """
    values = list(values)
    if connections[router.db_for_read(TimeEntry)].vendor == "postgresql":
        return RawSQL(f"SELECT unnest(%s::{sql_type}[])", [values])  # noqa: S611 - fixed type
    return values


def _refs(model: type, external_ids: set[str]) -> dict[str, str]:
    return dict(
        ExternalRef.objects.filter(
            system=SOURCE_SYSTEM, content_type=ContentType.objects.get_for_model(model),
            external_id__in=_in(external_ids, "text"),
        ).values_list("external_id", "object_id")
    )


def _by_pk(queryset: Any, pks: Any) -> dict[int, Any]:
    return {obj.pk: obj for obj in queryset.filter(pk__in=_in({int(i) for i in pks}, "bigint"))}


def _by_external_id(refs: dict[str, str], records: dict[int, Any]) -> dict[str, Any]:
    return {ext: records[int(pk)] for ext, pk in refs.items() if int(pk) in records}


def _preload(parsed: list[ParsedTime], *, today: dt.date) -> _Preload:
    project_refs = _refs(Project, {p.workspace_id for p in parsed})
    task_refs = _refs(Task, {p.story_id for p in parsed})
    worker_refs = _refs(Worker, {p.user_id for p in parsed})
    placeholder_refs = _refs(RolePlaceholder, {p.user_id for p in parsed})
    entry_refs = _refs(TimeEntry, {p.external_id for p in parsed})

    projects = _by_pk(
        Project.objects.select_related("legal_entity", "customer"), project_refs.values()
    )
    tasks = _by_pk(Task.objects.all(), task_refs.values())
    # The cost rate is encrypted and not needed here: deferring it saves a decrypt per worker.
    workers = _by_pk(
        Worker.objects.select_related("cost_centre").defer("cost_rate"), worker_refs.values()
    )
    entries = _by_pk(TimeEntry.objects.all(), entry_refs.values())
    periods: dict[int, list[AccountingPeriod]] = defaultdict(list)
    for period in AccountingPeriod.objects.filter(
        legal_entity_id__in={p.legal_entity_id for p in projects.values()}
    ):
        periods[period.legal_entity_id].append(period)
    erp_refs = {
        (ct_model, object_id): external_id
        for ct_model, object_id, external_id in ExternalRef.objects.filter(
            system="erp",
            content_type__model__in=["project", "task", "worker", "costcentre"],
            object_id__in=_in([str(k) for k in (
                *projects, *tasks, *workers,
                *{w.cost_centre_id for w in workers.values() if w.cost_centre_id},
            )], "text"),
        ).values_list("content_type__model", "object_id", "external_id")
    }
    return _Preload(
        projects=_by_external_id(project_refs, projects),
        tasks=_by_external_id(task_refs, tasks),
        workers=_by_external_id(worker_refs, workers),
        placeholders=set(placeholder_refs),
        existing=_by_external_id(entry_refs, entries),
        periods=periods,
        erp_refs=erp_refs,
        mappings=mapping_tables_load(sets=[LEGAL_ENTITY_SET, CURRENCY_SET]),
        # Ownership is judged on the day the change is processed, not the entry's work date.
        ownership=ownership_book_load(on=today),
    )


def _period_for(periods: list[AccountingPeriod], day: dt.date) -> AccountingPeriod | None:
    for period in periods:
        if period.start_date <= day <= period.end_date:
            return period
    return None


@dataclass(frozen=True)
class _Resolved:
    facts: Facts
    project: Project | None
    task: Task | None
    worker: Worker | None
    subsidiary: str | None
    erp_currency: str | None
    versions: dict[str, int]


def _resolve(p: ParsedTime, pre: _Preload) -> _Resolved:
    project = pre.projects.get(p.workspace_id)
    task = pre.tasks.get(p.story_id)
    if task is not None and project is not None and task.project_id != project.id:
        task = None  # a story of another workspace is as good as unknown here
    worker = pre.workers.get(p.user_id)
    entity_code = project.legal_entity.code if project else None
    versions: dict[str, int] = {}
    subsidiary = None
    if entity_code:
        found = pre.mappings.lookup(LEGAL_ENTITY_SET, entity_code, p.work_date)
        if found:
            subsidiary = found.target_value
            versions.update(found.stamp)
    # Without a published currency mapping, ISO codes pass through unchanged (documented).
    erp_currency: str | None = p.currency
    if CURRENCY_SET in pre.mappings.set_slugs:
        found = pre.mappings.lookup(CURRENCY_SET, p.currency, p.work_date)
        erp_currency = found.target_value if found else None
        if found:
            versions.update(found.stamp)
    period = (
        _period_for(pre.periods.get(project.legal_entity_id, []), p.work_date) if project else None
    )
    facts = Facts(
        work_date=p.work_date, project_ref=p.workspace_id, task_ref=p.story_id,
        worker_ref=p.user_id,
        project_code=project.code if project else None,
        project_status=project.status if project else None,
        task_code=task.code if task else None,
        task_status=task.status if task else None,
        task_allows_time=task.allows_time if task else None,
        worker_number=worker.employee_number if worker else None,
        worker_is_placeholder=worker is None and p.user_id in pre.placeholders,
        worker_status=worker.employment_status if worker else None,
        worker_cost_centre=(worker.cost_centre.code if worker and worker.cost_centre else None),
        legal_entity=entity_code,
        legal_entity_mapped=entity_code is None or subsidiary is not None,
        currency=p.currency,
        currency_mapped=erp_currency is not None,
        period_name=f"{period.start_date:%b %Y}" if period else None,
        period_status=period.status if period else None,
        customer_name=project.customer.name if project else None,
        customer_status=project.customer.status if project else None,
        billable=p.billable,
        rate_found=p.rate > 0,
    )
    return _Resolved(facts, project, task, worker, subsidiary, erp_currency, versions)


def _attname(name: str) -> str:
    return TimeEntry._meta.get_field(name).attname


def _record_key(external_id: str) -> str:
    return f"{SOURCE_SYSTEM}:{ENTITY}:{external_id}"


def time_entries_process(
    *, inbox_ids: Sequence[int], run: SyncRun, erp: Connection, now: dt.datetime | None = None
) -> ProcessCounts:
    """Process the given PSA time-entry inbox items as one batch. See the module docstring.

    Raises nothing for bad records (they become exception items); database errors roll the
    whole batch back, leaving every inbox item pending for the next attempt.
    """
    now = now or timezone.now()
    counts = ProcessCounts()
    with transaction.atomic(), acting_as(run.actor):
        items = list(
            InboxItem.objects.select_for_update().filter(
                id__in=_in(inbox_ids, "bigint"), status=InboxItem.Status.PENDING
            ).order_by("id")
        )
        # The newest payload of an entry wins; older ones in the same batch are superseded.
        latest: dict[str, tuple[InboxItem, ParsedTime]] = {}
        parked: list[InboxItem] = []
        for item in items:
            try:
                parsed = time_payload_parse(item.payload)
            except PayloadError as exc:
                counts.failures.append(_parse_failure(item, str(exc)))
                parked.append(item)
                continue
            latest[parsed.external_id] = (item, parsed)
        done = [item for item, _ in latest.values()]
        approved = [(item, p) for item, p in latest.values() if p.approved]
        counts.unchanged += len(latest) - len(approved)
        if approved:
            _post(approved, run=run, erp=erp, now=now, counts=counts, parked=parked, done=done)
        exception_items_raise(failures=counts.failures, run_id=run.id, now=now)
        parked_ids = {i.id for i in parked}
        if parked_ids:
            InboxItem.objects.filter(id__in=_in(parked_ids, "bigint")).update(
                status=InboxItem.Status.PARKED, processed_at=now
            )
        InboxItem.objects.filter(
            id__in=_in([i.id for i in items if i.id not in parked_ids], "bigint")
        ).update(status=InboxItem.Status.PROCESSED, processed_at=now)
    counts.failed = len(counts.failures) - counts.refused
    return counts


def _parse_failure(item: InboxItem, reason: str) -> Failure:
    external_id = item.external_id or f"inbox-{item.id}"
    return Failure(
        record_key=_record_key(external_id), stage=Stage.PARSE, queue=Queue.INTEGRATION_OPS,
        code="MALFORMED_PAYLOAD", category="technical",
        message=f"The PSA sent a time entry Ledgerbridge cannot read: {reason}"[:2000],
        suggested_fix="Check the PSA record (or a schema change on the PSA side), then replay.",
        cause="MALFORMED_PAYLOAD", payload=item.payload if isinstance(item.payload, dict) else {},
        correlation_id=item.correlation_id, inbox_item_id=item.id,
    )


def _post(
    approved: list[tuple[InboxItem, ParsedTime]], *, run: SyncRun, erp: Connection,
    now: dt.datetime, counts: ProcessCounts, parked: list[InboxItem], done: list[InboxItem],
) -> None:
    today = now.date()
    pre = _preload([p for _, p in approved], today=today)
    to_create: list[tuple[InboxItem, ParsedTime, _Resolved]] = []
    to_update: list[tuple[InboxItem, ParsedTime, TimeEntry, _Resolved]] = []
    passed_keys: list[str] = []
    for item, p in approved:
        resolved = _resolve(p, pre)
        broken = rules_check(resolved.facts)
        if broken:
            for failure in broken:
                counts.failures.append(Failure(
                    record_key=_record_key(p.external_id), stage=Stage.VALIDATE,
                    queue=failure.rule.queue, code=failure.rule.code,
                    message=failure.message, suggested_fix=failure.suggested_fix,
                    cause=failure.cause, detail={"rule": failure.rule.code},
                    payload=item.payload,
                    money_at_risk=money_at_risk(hours=p.hours, bill_rate=p.rate)
                    if p.billable else None,
                    currency=p.currency, correlation_id=item.correlation_id,
                    inbox_item_id=item.id,
                ))
                break  # one item per record and stage: the first rule to fix
            parked.append(item)
            continue
        passed_keys.append(_record_key(p.external_id))
        incoming = {
            "work_date": p.work_date, "hours": p.hours, "billable": p.billable,
            "bill_rate": p.rate, "currency": p.currency,
        }
        existing = pre.existing.get(p.external_id)
        if existing is None:
            to_create.append((item, p, resolved))
            continue
        current = {name: getattr(existing, _attname(name)) for name in OWNED_FIELDS}
        merge = ownership_merge(
            entity=ENTITY, current=current, incoming=incoming, source_system=SOURCE_SYSTEM,
            book=pre.ownership, on=today,
        )
        for refused in merge.refused:
            counts.refused += 1
            counts.failures.append(Failure(
                record_key=_record_key(p.external_id), stage=Stage.OWN,
                queue=Queue.TIME_AND_EXPENSE, code="FIELD_OWNED_ELSEWHERE", category="business",
                message=(
                    f"The {refused.source_system.upper()} changed {refused.field} from "
                    f"{refused.current} to {refused.attempted}, but the "
                    f"{refused.owner_system.upper()} owns that field: the change was refused."
                ),
                suggested_fix=f"Make the change in the {refused.owner_system.upper()}, or "
                "correct the ownership rule if it is wrong.",
                cause=f"{ENTITY}.{refused.field}",
                detail={"field": refused.field, "attempted": str(refused.attempted),
                        "current": str(refused.current), "owner": refused.owner_system,
                        "source": refused.source_system},
                correlation_id=item.correlation_id, inbox_item_id=item.id,
            ))
        changed = dict(merge.applied)
        if resolved.versions != existing.mapping_versions:
            changed["mapping_versions"] = resolved.versions
        if not changed:
            counts.unchanged += 1
            continue
        if existing.status in TimeEntry.FROZEN_STATUSES:
            # Posted time is corrected by a reversal and a new entry, never by an edit.
            counts.failures.append(Failure(
                record_key=_record_key(p.external_id), stage=Stage.VALIDATE,
                queue=Queue.TIME_AND_EXPENSE, code="POSTED_ENTRY_CHANGED",
                message=(
                    f"The PSA changed time entry {p.external_id} after it was "
                    f"{existing.status}: {', '.join(sorted(changed))}."
                ),
                suggested_fix="Reverse the posted entry in the ERP and book the correction as "
                "a new entry, or undo the change in the PSA.",
                cause="POSTED_ENTRY_CHANGED", payload=item.payload,
                detail={"changed": sorted(changed), "status": existing.status},
                money_at_risk=money_at_risk(hours=p.hours, bill_rate=p.rate)
                if p.billable else None,
                currency=p.currency, correlation_id=item.correlation_id, inbox_item_id=item.id,
            ))
            parked.append(item)
            continue
        for name, value in changed.items():
            setattr(existing, _attname(name), value)
        to_update.append((item, p, existing, resolved))

    if to_create:
        if _copy_supported():
            counts.deliveries += _create_by_copy(to_create, run=run, erp=erp, now=now, pre=pre)
        else:
            counts.deliveries += _create_by_orm(to_create, run=run, erp=erp, now=now, pre=pre)
        counts.created += len(to_create)
    if to_update:
        fields = [*OWNED_FIELDS, "mapping_versions"]
        audited_bulk_update(
            model=TimeEntry, objs=[e for _, _, e, _ in to_update], fields=fields, actor=run.actor
        )
        counts.updated += len(to_update)
        counts.deliveries += deliveries_enqueue(deliveries=[
            _delivery(entry, resolved, p, item, erp=erp, now=now, pre=pre)
            for item, p, entry, resolved in to_update
        ])
    if passed_keys:
        exception_items_close_for(
            record_keys=passed_keys, stage=Stage.VALIDATE, reason="Passed validation on replay."
        )


def _new_entry_values(item: InboxItem, p: ParsedTime, resolved: _Resolved, now: dt.datetime):
    """The field values (attnames) of a new canonical entry for `p`."""
    return {
        "worker_id": resolved.worker.pk, "project_id": resolved.project.pk,
        "task_id": resolved.task.pk, "work_date": p.work_date, "hours": p.hours,
        "billable": p.billable, "bill_rate": p.rate, "currency_id": p.currency,
        "status": ApprovalStatus.APPROVED, "approved_at": now,
        "mapping_versions": resolved.versions,
        "correlation_id": resolved.project.correlation_id or item.correlation_id,
    }


def _create_by_orm(
    to_create: list[tuple[InboxItem, ParsedTime, _Resolved]], *, run: SyncRun, erp: Connection,
    now: dt.datetime, pre: _Preload,
) -> int:
    """New entries through the ORM (databases without COPY): entries and refs with history,
    then their deliveries. Returns how many deliveries are new."""
    entries = [TimeEntry(**_new_entry_values(item, p, r, now)) for item, p, r in to_create]
    created = audited_bulk_create(model=TimeEntry, objs=entries, actor=run.actor)
    entry_type = ContentType.objects.get_for_model(TimeEntry)
    refs = [
        ExternalRef(system=SOURCE_SYSTEM, content_type=entry_type, object_id=str(e.pk),
                    external_id=p.external_id, last_synced_at=now)
        for (_, p, _), e in zip(to_create, created, strict=True)
    ]
    audited_bulk_create(model=ExternalRef, objs=refs, actor=run.actor)
    return deliveries_enqueue(deliveries=[
        _delivery(entry, resolved, p, item, erp=erp, now=now, pre=pre)
        for (item, p, resolved), entry in zip(to_create, created, strict=True)
    ])


# --- PostgreSQL: COPY straight into the tables -------------------------------------------------
#
# The same rows `_create_by_orm` writes (entry + "+" history row attributed to the run, ref +
# its history row, one pending delivery each), without a model instance per row: primary keys
# are drawn from the tables' sequences first, then each table gets one COPY. New primary keys
# cannot collide with an existing idempotency key, and a concurrent creator of the same entry
# hits the external-ref unique constraints, which rolls this whole batch back (as the ORM path).

_REQUIRED = object()


def _copy_supported() -> bool:
    return connections[router.db_for_write(TimeEntry)].vendor == "postgresql"


class _CopyTable:
    """Column list and per-column defaults of one table, to build COPY rows from attnames."""

    def __init__(self, model: type, *, omit: Sequence[str] = ()) -> None:
        connection = connections[router.db_for_write(model)]
        fields = [f for f in model._meta.concrete_fields if f.attname not in omit]
        self.sql = "COPY {} ({}) FROM STDIN".format(
            connection.ops.quote_name(model._meta.db_table),
            ", ".join(connection.ops.quote_name(f.column) for f in fields),
        )
        self.index = {f.attname: i for i, f in enumerate(fields)}
        self.json = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
        template: list[Any] = []
        for f in fields:
            # As a model instance would start: the field's default ("" for text without one).
            default = f.get_default()
            if default is None and not f.null:
                template.append(_REQUIRED)
            else:
                template.append(_json(default) if f.attname in self.json else default)
        self.template = template

    def row(self, values: dict[str, Any]) -> list[Any]:
        row = self.template.copy()
        index = self.index
        for name, value in values.items():
            row[index[name]] = value
        if _REQUIRED in row:
            missing = [n for n, i in index.items() if row[i] is _REQUIRED]
            raise ValueError(f"COPY row lacks required columns {missing}")
        return row


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


_TABLES: dict[str, _CopyTable] = {}


def _table(model: type, **kwargs: Any) -> _CopyTable:
    key = model._meta.label
    if key not in _TABLES:
        _TABLES[key] = _CopyTable(model, **kwargs)
    return _TABLES[key]


def _ids_draw(cursor, model: type, n: int) -> list[int]:
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
        [model._meta.db_table, model._meta.pk.column, n],
    )
    return sorted(row[0] for row in cursor.fetchall())


def _history_values(values: dict[str, Any], *, actor: str, at: dt.datetime) -> dict[str, Any]:
    return {**values, "history_date": at, "history_change_reason": "", "history_type": "+",
            "history_user_id": None, "history_actor": actor}


def _create_by_copy(
    to_create: list[tuple[InboxItem, ParsedTime, _Resolved]], *, run: SyncRun, erp: Connection,
    now: dt.datetime, pre: _Preload,
) -> int:
    """New entries by COPY (see above). Returns how many deliveries were written."""
    actor = run.actor
    clock = timezone.now()  # what auto_now / auto_now_add and the history date would take
    entry_type = ContentType.objects.get_for_model(TimeEntry).pk
    entries, entry_history = _table(TimeEntry), _table(TimeEntry.history.model,
                                                       omit=["history_id"])
    refs, ref_history = _table(ExternalRef), _table(ExternalRef.history.model,
                                                    omit=["history_id"])
    outbox = _table(Delivery, omit=["id"])
    json_entry = entries.json
    connection = connections[router.db_for_write(TimeEntry)]
    with connection.cursor() as cursor:
        entry_ids = _ids_draw(cursor, TimeEntry, len(to_create))
        ref_ids = _ids_draw(cursor, ExternalRef, len(to_create))
        entry_rows, entry_history_rows, ref_rows, ref_history_rows, delivery_rows = (
            [], [], [], [], []
        )
        for (item, p, resolved), pk, ref_pk in zip(to_create, entry_ids, ref_ids, strict=True):
            values = _new_entry_values(item, p, resolved, now)
            values.update(id=pk, version=1, created_at=clock, updated_at=clock)
            for name in json_entry & values.keys():
                values[name] = _json(values[name])
            entry_rows.append(entries.row(values))
            entry_history_rows.append(entry_history.row(
                _history_values(values, actor=actor, at=clock)
            ))
            ref = {"id": ref_pk, "system": SOURCE_SYSTEM, "content_type_id": entry_type,
                   "object_id": str(pk), "external_id": p.external_id, "last_synced_at": now,
                   "version": 1, "created_at": clock, "updated_at": clock}
            ref_rows.append(refs.row(ref))
            ref_history_rows.append(ref_history.row(_history_values(ref, actor=actor, at=clock)))
            fields = _delivery_fields(
                pk=pk, version=1, work_date=p.work_date, hours=p.hours, billable=p.billable,
                bill_rate=p.rate, currency=p.currency,
                correlation_id=values["correlation_id"] or item.correlation_id,
                resolved=resolved, p=p, erp=erp, now=now, pre=pre,
            )
            fields.update(content_type_id=entry_type, connection_id=erp.pk, created_at=clock,
                          payload=_json(fields["payload"]))
            delivery_rows.append(outbox.row(fields))
        for table, rows in ((entries, entry_rows), (entry_history, entry_history_rows),
                            (refs, ref_rows), (ref_history, ref_history_rows),
                            (outbox, delivery_rows)):
            with cursor.copy(table.sql) as copy:
                for row in rows:
                    copy.write_row(row)
    return len(delivery_rows)


def _erp_ref(pre: _Preload, model: str, pk: int, *, fallback: str) -> dict[str, str]:
    """A NetSuite record reference: its internal id when we know it, else its external id."""
    known = pre.erp_refs.get((model, str(pk)))
    return {"id": known} if known else {"externalId": fallback}


def _delivery(
    entry: TimeEntry, resolved: _Resolved, p: ParsedTime, item: InboxItem, *,
    erp: Connection, now: dt.datetime, pre: _Preload,
) -> Delivery:
    """The ERP labour posting (NetSuite timeBill) for one canonical time entry version."""
    fields = _delivery_fields(
        pk=entry.pk, version=entry.version, work_date=entry.work_date, hours=entry.hours,
        billable=entry.billable, bill_rate=entry.bill_rate, currency=entry.currency_id,
        correlation_id=entry.correlation_id or item.correlation_id,
        resolved=resolved, p=p, erp=erp, now=now, pre=pre,
    )
    return Delivery(
        connection=erp, content_type=ContentType.objects.get_for_model(TimeEntry), **fields
    )


def _delivery_fields(
    *, pk: int, version: int, work_date: dt.date, hours: Decimal, billable: bool,
    bill_rate: Decimal, currency: str, correlation_id: str, resolved: _Resolved, p: ParsedTime,
    erp: Connection, now: dt.datetime, pre: _Preload,
) -> dict[str, Any]:
    """A delivery's own fields (connection and content type aside) for one entry version."""
    # Keyed by the PSA's own id, not ours: stable across rebuilds, and the same key the ERP
    # already holds for time posted before Ledgerbridge, so history is never posted twice.
    external_id = f"{ERP_KEY_PREFIX}{p.external_id}"
    worker, project, task = resolved.worker, resolved.project, resolved.task
    amount = money_at_risk(hours=hours, bill_rate=bill_rate)
    body = {
        "externalId": external_id,
        "tranDate": work_date.isoformat(),
        "hours": str(hours),
        "isBillable": billable,
        "rate": str(bill_rate),
        "subsidiary": {"id": resolved.subsidiary},
        "employee": _erp_ref(pre, "worker", worker.pk, fallback=worker.employee_number),
        "customer": _erp_ref(pre, "project", project.pk, fallback=project.code),
        "caseTaskEvent": _erp_ref(pre, "task", task.pk, fallback=task.code),
        # Without a known ERP department the ERP takes the employee's own (NetSuite sources it).
        "department": {"id": pre.erp_refs[("costcentre", str(worker.cost_centre_id))]}
        if ("costcentre", str(worker.cost_centre_id)) in pre.erp_refs else None,
        "memo": f"PSA time entry {p.external_id}",
    }
    # What to send (`record_type`, `body`) and what finance needs if it fails (amount at risk).
    payload = {
        "record_type": "timeBill", "body": body, "amount": str(amount),
        "currency": currency, "mapping_versions": resolved.versions,
    }
    return {
        "operation": OPERATION, "object_id": str(pk), "record_version": version,
        "idempotency_key": f"erp:{OPERATION}:{pk}:v{version}",
        "external_id": external_id, "payload": payload, "next_attempt_at": now,
        "correlation_id": correlation_id,
    }
