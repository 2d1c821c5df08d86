"""Approved PSA time entries → canonical TimeEntry → one ERP labour posting each, or an exception.

One batch, one transaction: parse every inbox payload, resolve references with a fixed number
of queries, map with the published versions effective for each entry's date, apply field
ownership, check the business rules, upsert the canonical records with history (actor = the
run), each carrying its PSA id, and write one outbox delivery per changed record version. A
record that fails any step becomes an exception item in its owner's queue; nothing is dropped
and nothing is half-written.

Idempotent: re-processing the same payloads changes nothing (same values → no new version → the
delivery's idempotency key exists already); a changed entry gets a new version and a new
delivery that upserts the same ERP record (external id `KT-TE-<PSA id>`).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from django.contrib.contenttypes.models import ContentType
from django.db import connections, router, transaction
from django.utils import timezone

from sync.audit import (
    acting_as,
    audited_bulk_create,
    audited_bulk_update,
    audited_copy_create,
)
from sync.bulk import gc_paused
from sync.connectors.base import iso_date
from sync.connectors.http import json_decode
from sync.mappings.ownership import OwnershipBook, ownership_merge
from sync.mappings.resolve import MappingTable
from sync.mappings.selectors import mapping_tables_load, ownership_book_load
from sync.models import (
    AccountingPeriod,
    Currency,
    ExternalRef,
    Project,
    RolePlaceholder,
    Task,
    TimeEntry,
    Worker,
)
from sync.models.transactions import ApprovalStatus
from sync.pgcopy import copy_insert, copy_supported
from sync.pipeline.exception_items import Failure, exception_items_close_for, exception_items_raise
from sync.pipeline.models import Connection, Delivery, InboxItem, SyncRun
from sync.pipeline.models.exception_items import Queue, Stage
from sync.pipeline.outbox import deliveries_enqueue
from sync.pipeline.rules import Facts, money_at_risk, rules_check
from sync.pipeline.target_records import target_records_known

SOURCE_SYSTEM = "psa"
ERP_SYSTEM = "erp"
ENTITY = "time_entry"
OPERATION = "erp.time_bill.upsert"
ERP_KEY_PREFIX = "KT-TE-"
ERP_RECORD_TYPE = "timeBill"
LEGAL_ENTITY_SET = "legal-entity"
CURRENCY_SET = "currency"
MAX_TEXT = 255
RECORD_KEY_PREFIX = f"{SOURCE_SYSTEM}:{ENTITY}:"
# The entry's own id is shorter: it is stored prefixed, as the exception items' record key
# `psa:time_entry:<id>` and the ERP key `KT-TE-<id>`, both at most 255 characters.
MAX_ENTRY_ID = MAX_TEXT - len(RECORD_KEY_PREFIX)
MAX_MINUTES_PER_DAY = 24 * 60
# The largest rate TimeEntry.bill_rate holds (18 digits, 4 after the point), in cents: a larger
# one is refused here, not by the database, which would roll back the whole batch.
MAX_RATE_CENTS = 10**16 - 1
# Fields the PSA sends that Ledgerbridge keeps on the canonical time entry.
OWNED_FIELDS = ("work_date", "hours", "billable", "bill_rate", "currency")


class PayloadError(ValueError):
    """The payload is not a time entry we can read; the message says exactly why."""


class ParsedTime(NamedTuple):
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
    hours: Decimal  # minutes / 60, to the hundredth (half-even, Decimal's default)


_CENT = Decimal("0.01")
_SIXTY = Decimal(60)


def _text(payload: dict[str, Any], name: str, limit: int = MAX_TEXT) -> str:
    value = payload.get(name)
    if value is None or value == "":
        raise PayloadError(f"`{name}` is missing.")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"`{name}` must be an id (text or integer), got {type(value).__name__}.")
    text = str(value)
    if len(text) > limit:
        raise PayloadError(f"`{name}` is {len(text)} characters long; at most {limit}.")
    return text


def _plain_id(value: Any, limit: int = MAX_TEXT) -> str | None:
    """An id that needs no checking beyond its type and length (the common case), else None."""
    if type(value) is str:
        return value if 0 < len(value) <= limit else None
    if type(value) is int:
        text = str(value)
        return text if len(text) <= limit else None
    return None


def _plain(payload: dict[str, Any]) -> ParsedTime | None:
    """The entry when every field has its plain, valid form; None sends it to the careful path
    (which accepts exactly the same entries and names what is wrong with the others)."""
    get = payload.get
    ids = (
        _plain_id(get("id"), MAX_ENTRY_ID),
        _plain_id(get("workspace_id")),
        _plain_id(get("story_id")),
        _plain_id(get("user_id")),
    )
    minutes, cents = get("time_in_minutes"), get("rate_in_cents")
    billable, approved = get("billable"), get("approved")
    currency, day = get("currency"), get("date_performed")
    if (
        None in ids
        or type(minutes) is not int
        or not 0 < minutes <= MAX_MINUTES_PER_DAY
        or type(cents) is not int
        or not 0 <= cents <= MAX_RATE_CENTS
        or type(billable) is not bool
        or type(approved) is not bool
        or type(currency) is not str
        or len(currency) != 3
        or not currency.isascii()
        or not currency.isalpha()
        or type(day) is not str
    ):
        return None
    try:
        work_date = iso_date(day)
    except ValueError:
        return None
    return ParsedTime(
        *ids,
        work_date,
        minutes,
        billable,
        approved,
        _rate(cents),
        currency.upper(),
        _hours(minutes),
    )


def time_payload_parse(payload: Any) -> ParsedTime:
    """Read a Kantata time entry strictly. Raises PayloadError naming every field it refuses."""
    if not isinstance(payload, dict):
        raise PayloadError("The payload is not a JSON object.")
    plain = _plain(payload)
    return plain if plain is not None else _careful(payload)


def _careful(payload: dict[str, Any]) -> ParsedTime:
    """Every field checked on its own, so that the error names each one that is wrong."""
    errors: list[str] = []

    def take(fn, *args):
        try:
            return fn(*args)
        except PayloadError as exc:
            errors.append(str(exc))
            return None

    values = (
        take(_text, payload, "id", MAX_ENTRY_ID),
        take(_text, payload, "workspace_id"),
        take(_text, payload, "story_id"),
        take(_text, payload, "user_id"),
        take(_date, payload.get("date_performed")),
        take(_minutes, payload.get("time_in_minutes")),
        take(_bool, payload, "billable"),
        take(_bool, payload, "approved"),
        take(_cents, payload.get("rate_in_cents")),
        take(_currency, payload.get("currency")),
    )
    if errors:
        raise PayloadError(" ".join(errors))
    return _parsed(*values)


def _parsed(
    external_id,
    workspace_id,
    story_id,
    user_id,
    work_date,
    minutes,
    billable,
    approved,
    rate,
    currency,
) -> ParsedTime:
    return ParsedTime(
        external_id,
        workspace_id,
        story_id,
        user_id,
        work_date,
        minutes,
        billable,
        approved,
        rate,
        currency,
        _hours(minutes),
    )


@functools.lru_cache(maxsize=MAX_MINUTES_PER_DAY)
def _hours(minutes: int) -> Decimal:
    """Minutes as hours to the hundredth (half-even, Decimal's default): 1,440 values at most."""
    return (Decimal(minutes) / _SIXTY).quantize(_CENT)


@functools.lru_cache(maxsize=4096)
def _rate(cents: int) -> Decimal:
    """A non-negative whole number of cents as an amount (a firm has a few hundred rates)."""
    return (Decimal(cents) / 100).quantize(_CENT)


def _date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise PayloadError("`date_performed` must be a YYYY-MM-DD date.")
    try:
        return iso_date(value)
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
    if value > MAX_RATE_CENTS:
        raise PayloadError(
            f"`rate_in_cents` {str(value)[:40]} is beyond any bill rate (at most {MAX_RATE_CENTS})."
        )
    return _rate(value)


def _currency(value: Any) -> str:
    # ASCII only: "ß".upper() is "SS", which would no longer be a three-letter code.
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
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
    linked: int = 0  # of `created`: already in the ERP, recorded as posted, not posted again
    failures: list[Failure] = field(default_factory=list)


class _Item(NamedTuple):
    """The inbox columns a batch needs (no model instance per item)."""

    id: int
    external_id: str
    correlation_id: str
    payload: Any


class _ProjectRow(NamedTuple):
    pk: int
    code: str
    status: str
    legal_entity_id: int
    entity_code: str
    customer_name: str
    customer_status: str
    correlation_id: str


class _TaskRow(NamedTuple):
    pk: int
    code: str
    status: str
    allows_time: bool
    project_id: int


class _WorkerRow(NamedTuple):
    pk: int
    employee_number: str
    employment_status: str
    cost_centre_id: int | None
    cost_centre_code: str | None


_PROJECT_COLUMNS = (
    "pk",
    "code",
    "status",
    "legal_entity_id",
    "legal_entity__code",
    "customer__name",
    "customer__status",
    "correlation_id",
)
_TASK_COLUMNS = ("pk", "code", "status", "allows_time", "project_id")
# The cost rate is encrypted and not needed here: not reading it saves a decrypt per worker.
_WORKER_COLUMNS = (
    "pk",
    "employee_number",
    "employment_status",
    "cost_centre_id",
    "cost_centre__code",
)


@dataclass
class _Preload:
    """Everything the batch needs, loaded with a fixed number of queries."""

    projects: dict[str, _ProjectRow]
    tasks: dict[str, _TaskRow]
    workers: dict[str, _WorkerRow]
    placeholders: set[str]
    currencies: set[str]
    existing: dict[str, TimeEntry]
    # PSA id → the ERP's internal id, for entries the ERP already holds under our key (time
    # posted before Ledgerbridge, learned from the ERP's own listing: TargetRecord).
    posted: dict[str, str]
    periods: dict[int, list[AccountingPeriod]]
    erp_refs: dict[tuple[str, str], str]
    mappings: MappingTable
    ownership: OwnershipBook
    # (legal entity, currency, day) → (subsidiary, ERP currency, versions, period name, period
    # status): the lookups every entry of one entity and day shares, made once per batch.
    days: dict[tuple[int, str, dt.date], tuple] = field(default_factory=dict)


def _refs(model: type, external_ids: set[str]) -> dict[str, str]:
    return dict(
        ExternalRef.objects.filter(
            system=SOURCE_SYSTEM,
            content_type=ContentType.objects.get_for_model(model),
            external_id__any=external_ids,
        ).values_list("external_id", "object_id")
    )


def _rows(model: type, row_type: type, columns: Sequence[str], refs: dict[str, str]):
    """{external id: row} of the records `refs` names (one query)."""
    by_pk = {
        values[0]: row_type(*values)
        for values in model.objects.filter(pk__any={int(pk) for pk in refs.values()}).values_list(
            *columns
        )
    }
    return {ext: by_pk[int(pk)] for ext, pk in refs.items() if int(pk) in by_pk}


def _preload(
    parsed: list[ParsedTime], *, today: dt.date, erp: Connection | None = None
) -> _Preload:
    project_refs = _refs(Project, {p.workspace_id for p in parsed})
    task_refs = _refs(Task, {p.story_id for p in parsed})
    worker_refs = _refs(Worker, {p.user_id for p in parsed})
    placeholder_refs = _refs(RolePlaceholder, {p.user_id for p in parsed})

    projects = _rows(Project, _ProjectRow, _PROJECT_COLUMNS, project_refs)
    tasks = _rows(Task, _TaskRow, _TASK_COLUMNS, task_refs)
    workers = _rows(Worker, _WorkerRow, _WORKER_COLUMNS, worker_refs)
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
            object_id__any=[
                str(k)
                for k in {
                    *(r.pk for r in projects.values()),
                    *(r.pk for r in tasks.values()),
                    *(r.pk for r in workers.values()),
                    *(r.cost_centre_id for r in workers.values() if r.cost_centre_id),
                }
            ],
        ).values_list("content_type__model", "object_id", "external_id")
    }
    return _Preload(
        projects=projects,
        tasks=tasks,
        workers=workers,
        placeholders=set(placeholder_refs),
        currencies=set(Currency.objects.values_list("code", flat=True)),
        existing={
            entry.psa_id: entry
            for entry in TimeEntry.objects.filter(psa_id__any={p.external_id for p in parsed})
        },
        posted={
            key.removeprefix(ERP_KEY_PREFIX): target_id
            for key, target_id in target_records_known(
                connection=erp,
                record_type=ERP_RECORD_TYPE,
                external_ids={f"{ERP_KEY_PREFIX}{p.external_id}" for p in parsed},
            ).items()
        }
        if erp is not None
        else {},
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


class _Resolved(NamedTuple):
    facts: Facts
    project: _ProjectRow | None
    task: _TaskRow | None
    worker: _WorkerRow | None
    subsidiary: str | None
    erp_currency: str | None
    versions: dict[str, int]


def _day(project: _ProjectRow | None, p: ParsedTime, pre: _Preload) -> tuple:
    """(subsidiary, ERP currency, mapping versions, period name, period status) of an entry of
    `project` on its date, made once per (legal entity, currency, day) and batch."""
    entity_id = project.legal_entity_id if project else None
    key = (entity_id, p.currency, p.work_date)
    found = pre.days.get(key)
    if found is not None:
        return found
    versions: dict[str, int] = {}
    subsidiary = None
    if project is not None:
        mapped = pre.mappings.lookup(LEGAL_ENTITY_SET, project.entity_code, p.work_date)
        if mapped:
            subsidiary = mapped.target_value
            versions.update(mapped.stamp)
    # Without a published currency mapping, ISO codes pass through unchanged (documented).
    erp_currency: str | None = p.currency
    if CURRENCY_SET in pre.mappings.set_slugs:
        mapped = pre.mappings.lookup(CURRENCY_SET, p.currency, p.work_date)
        erp_currency = mapped.target_value if mapped else None
        if mapped:
            versions.update(mapped.stamp)
    period = _period_for(pre.periods.get(entity_id, []), p.work_date) if project else None
    found = pre.days[key] = (
        subsidiary,
        erp_currency,
        versions,
        f"{period.start_date:%b %Y}" if period else None,
        period.status if period else None,
    )
    return found


def _resolve(p: ParsedTime, pre: _Preload) -> _Resolved:
    project = pre.projects.get(p.workspace_id)
    task = pre.tasks.get(p.story_id)
    if task is not None and project is not None and task.project_id != project.pk:
        task = None  # a story of another workspace is as good as unknown here
    worker = pre.workers.get(p.user_id)
    subsidiary, erp_currency, versions, period_name, period_status = _day(project, p, pre)
    entity_code = project.entity_code if project else None
    facts = Facts(
        work_date=p.work_date,
        project_ref=p.workspace_id,
        task_ref=p.story_id,
        worker_ref=p.user_id,
        project_code=project.code if project else None,
        project_status=project.status if project else None,
        task_code=task.code if task else None,
        task_status=task.status if task else None,
        task_allows_time=task.allows_time if task else None,
        worker_number=worker.employee_number if worker else None,
        worker_is_placeholder=worker is None and p.user_id in pre.placeholders,
        worker_status=worker.employment_status if worker else None,
        worker_cost_centre=worker.cost_centre_code if worker else None,
        legal_entity=entity_code,
        legal_entity_mapped=entity_code is None or subsidiary is not None,
        currency=p.currency,
        currency_known=p.currency in pre.currencies,
        currency_mapped=erp_currency is not None,
        period_name=period_name,
        period_status=period_status,
        customer_name=project.customer_name if project else None,
        customer_status=project.customer_status if project else None,
        billable=p.billable,
        rate_found=p.rate > 0,
    )
    return _Resolved(facts, project, task, worker, subsidiary, erp_currency, versions)


def _attname(name: str) -> str:
    return TimeEntry._meta.get_field(name).attname


def _record_key(external_id: str) -> str:
    return f"{RECORD_KEY_PREFIX}{external_id}"


def time_entries_process(
    *, inbox_ids: Sequence[int], run: SyncRun, erp: Connection, now: dt.datetime | None = None
) -> ProcessCounts:
    """Process the given PSA time-entry inbox items as one batch. See the module docstring.

    Raises nothing for bad records (they become exception items); database errors roll the
    whole batch back, leaving every inbox item pending for the next attempt.
    """
    now = now or timezone.now()
    counts = ProcessCounts()
    with gc_paused(), transaction.atomic(), acting_as(run.actor):
        items, marked_processed = _items_claim(inbox_ids, now=now)
        # The newest payload of an entry wins; older ones in the same batch are superseded.
        latest: dict[str, tuple[_Item, ParsedTime]] = {}
        parked: list[_Item] = []
        for item in items:
            try:
                parsed = time_payload_parse(item.payload)
            except PayloadError as exc:
                counts.failures.append(_parse_failure(item, str(exc)))
                parked.append(item)
                continue
            latest[parsed.external_id] = (item, parsed)
        approved = [(item, p) for item, p in latest.values() if p.approved]
        counts.unchanged += len(latest) - len(approved)
        if approved:
            _post(approved, run=run, erp=erp, now=now, counts=counts, parked=parked)
        exception_items_raise(failures=counts.failures, run_id=run.id, now=now)
        parked_ids = {i.id for i in parked}
        if parked_ids:
            InboxItem.objects.filter(id__any=parked_ids).update(
                status=InboxItem.Status.PARKED, processed_at=now
            )
        if not marked_processed:
            InboxItem.objects.filter(
                id__any=[i.id for i in items if i.id not in parked_ids]
            ).update(status=InboxItem.Status.PROCESSED, processed_at=now)
    counts.failed = len(counts.failures) - counts.refused
    return counts


def _items_claim(inbox_ids: Sequence[int], *, now: dt.datetime) -> tuple[list[_Item], bool]:
    """Lock the batch's pending items and read them, oldest first. Returns (items, whether
    they are already marked processed).

    On PostgreSQL one `UPDATE … RETURNING` marks them processed, locks them and returns their
    payloads as text (read by json_decode, every number exact): the items a concurrent worker
    has taken are skipped (it holds their locks; once it commits they are no longer pending),
    and a rollback leaves them all pending. Elsewhere: SELECT … FOR UPDATE now, the status
    update at the end.
    """
    if connections[router.db_for_write(InboxItem)].vendor == "postgresql":
        with connections[router.db_for_write(InboxItem)].cursor() as cursor:
            cursor.execute(
                f"UPDATE {InboxItem._meta.db_table} SET status = %s, processed_at = %s "  # noqa: S608 - fixed names
                "WHERE id = ANY(%s::bigint[]) AND status = %s "
                "RETURNING id, external_id, correlation_id, payload::text",
                [InboxItem.Status.PROCESSED, now, list(inbox_ids), InboxItem.Status.PENDING],
            )
            rows = sorted(cursor.fetchall())
        return [_Item(i, ext, corr, json_decode(text)) for i, ext, corr, text in rows], True
    rows = (
        InboxItem.objects.select_for_update()
        .filter(id__any=inbox_ids, status=InboxItem.Status.PENDING)
        .order_by("id")
        .values_list("id", "external_id", "correlation_id", "payload")
    )
    return [_Item(*row) for row in rows], False


def _parse_failure(item: _Item, reason: str) -> Failure:
    external_id = item.external_id or f"inbox-{item.id}"
    return Failure(
        record_key=_record_key(external_id),
        stage=Stage.PARSE,
        queue=Queue.INTEGRATION_OPS,
        code="MALFORMED_PAYLOAD",
        category="technical",
        message=f"The PSA sent a time entry Ledgerbridge cannot read: {reason}"[:2000],
        suggested_fix="Check the PSA record (or a schema change on the PSA side), then replay.",
        cause="MALFORMED_PAYLOAD",
        payload=item.payload if isinstance(item.payload, dict) else {},
        correlation_id=item.correlation_id,
        inbox_item_id=item.id,
    )


def _post(
    approved: list[tuple[_Item, ParsedTime]],
    *,
    run: SyncRun,
    erp: Connection,
    now: dt.datetime,
    counts: ProcessCounts,
    parked: list[_Item],
) -> None:
    today = now.date()
    pre = _preload([p for _, p in approved], today=today, erp=erp)
    to_create: list[tuple[_Item, ParsedTime, _Resolved]] = []
    # New to Ledgerbridge but already in the ERP under our key: recorded as posted, linked to
    # the ERP's record and not posted again, whatever the posting rules (a closed period, a
    # project closed since) would say today. Only the records it belongs to must exist here.
    to_link: list[tuple[_Item, ParsedTime, _Resolved]] = []
    to_update: list[tuple[_Item, ParsedTime, TimeEntry, _Resolved]] = []
    passed_keys: list[str] = []
    for item, p in approved:
        resolved = _resolve(p, pre)
        if (
            p.external_id in pre.posted
            and p.external_id not in pre.existing
            and resolved.project
            and resolved.task
            and resolved.worker
            and p.currency in pre.currencies
        ):
            to_link.append((item, p, resolved))
            passed_keys.append(_record_key(p.external_id))
            continue
        broken = rules_check(resolved.facts)
        if broken:
            for failure in broken:
                counts.failures.append(
                    Failure(
                        record_key=_record_key(p.external_id),
                        stage=Stage.VALIDATE,
                        queue=failure.rule.queue,
                        code=failure.rule.code,
                        message=failure.message,
                        suggested_fix=failure.suggested_fix,
                        cause=failure.cause,
                        detail={"rule": failure.rule.code},
                        payload=item.payload,
                        money_at_risk=money_at_risk(hours=p.hours, bill_rate=p.rate)
                        if p.billable
                        else None,
                        currency=p.currency,
                        correlation_id=item.correlation_id,
                        inbox_item_id=item.id,
                    )
                )
                break  # one item per record and stage: the first rule to fix
            parked.append(item)
            continue
        passed_keys.append(_record_key(p.external_id))
        incoming = {
            "work_date": p.work_date,
            "hours": p.hours,
            "billable": p.billable,
            "bill_rate": p.rate,
            "currency": p.currency,
        }
        existing = pre.existing.get(p.external_id)
        if existing is None:
            to_create.append((item, p, resolved))
            continue
        current = {name: getattr(existing, _attname(name)) for name in OWNED_FIELDS}
        merge = ownership_merge(
            entity=ENTITY,
            current=current,
            incoming=incoming,
            source_system=SOURCE_SYSTEM,
            book=pre.ownership,
            on=today,
        )
        for refused in merge.refused:
            counts.refused += 1
            counts.failures.append(
                Failure(
                    record_key=_record_key(p.external_id),
                    stage=Stage.OWN,
                    queue=Queue.TIME_AND_EXPENSE,
                    code="FIELD_OWNED_ELSEWHERE",
                    category="business",
                    message=(
                        f"The {refused.source_system.upper()} changed {refused.field} from "
                        f"{refused.current} to {refused.attempted}, but the "
                        f"{refused.owner_system.upper()} owns that field: the change was refused."
                    ),
                    suggested_fix=f"Make the change in the {refused.owner_system.upper()}, or "
                    "correct the ownership rule if it is wrong.",
                    cause=f"{ENTITY}.{refused.field}",
                    detail={
                        "field": refused.field,
                        "attempted": str(refused.attempted),
                        "current": str(refused.current),
                        "owner": refused.owner_system,
                        "source": refused.source_system,
                    },
                    correlation_id=item.correlation_id,
                    inbox_item_id=item.id,
                )
            )
        changed = dict(merge.applied)
        if resolved.versions != existing.mapping_versions:
            changed["mapping_versions"] = resolved.versions
        if not changed:
            counts.unchanged += 1
            continue
        if existing.status in TimeEntry.FROZEN_STATUSES:
            # Posted time is corrected by a reversal and a new entry, never by an edit.
            counts.failures.append(
                Failure(
                    record_key=_record_key(p.external_id),
                    stage=Stage.VALIDATE,
                    queue=Queue.TIME_AND_EXPENSE,
                    code="POSTED_ENTRY_CHANGED",
                    message=(
                        f"The PSA changed time entry {p.external_id} after it was "
                        f"{existing.status}: {', '.join(sorted(changed))}."
                    ),
                    suggested_fix="Reverse the posted entry in the ERP and book the correction as "
                    "a new entry, or undo the change in the PSA.",
                    cause="POSTED_ENTRY_CHANGED",
                    payload=item.payload,
                    detail={"changed": sorted(changed), "status": existing.status},
                    money_at_risk=money_at_risk(hours=p.hours, bill_rate=p.rate)
                    if p.billable
                    else None,
                    currency=p.currency,
                    correlation_id=item.correlation_id,
                    inbox_item_id=item.id,
                )
            )
            parked.append(item)
            continue
        for name, value in changed.items():
            setattr(existing, _attname(name), value)
        to_update.append((item, p, existing, resolved))

    create = _create_by_copy if copy_supported(TimeEntry) else _create_by_orm
    if to_create:
        counts.deliveries += create(to_create, run=run, erp=erp, now=now, pre=pre)
        counts.created += len(to_create)
    if to_link:
        create(to_link, run=run, erp=erp, now=now, pre=pre, already_posted=True)
        counts.created += len(to_link)
        counts.linked += len(to_link)
    if to_update:
        fields = [*OWNED_FIELDS, "mapping_versions"]
        audited_bulk_update(
            model=TimeEntry, objs=[e for _, _, e, _ in to_update], fields=fields, actor=run.actor
        )
        counts.updated += len(to_update)
        counts.deliveries += deliveries_enqueue(
            deliveries=[
                _delivery(entry, resolved, p, item, erp=erp, now=now, pre=pre)
                for item, p, entry, resolved in to_update
            ]
        )
    if passed_keys:
        exception_items_close_for(
            record_keys=passed_keys, stage=Stage.VALIDATE, reason="Passed validation on replay."
        )


# Columns of a new canonical time entry, in the order `_entry_row` gives them.
_ENTRY_COLUMNS = (
    "psa_id",
    "worker_id",
    "project_id",
    "task_id",
    "work_date",
    "hours",
    "billable",
    "bill_rate",
    "currency_id",
    "mapping_versions",
    "correlation_id",
)


def _entry_row(item: _Item, p: ParsedTime, resolved: _Resolved) -> tuple:
    return (
        p.external_id,
        resolved.worker.pk,
        resolved.project.pk,
        resolved.task.pk,
        p.work_date,
        p.hours,
        p.billable,
        p.rate,
        p.currency,
        resolved.versions,
        resolved.project.correlation_id or item.correlation_id,
    )


def _entry_constants(now: dt.datetime, *, already_posted: bool) -> dict[str, Any]:
    status = ApprovalStatus.POSTED if already_posted else ApprovalStatus.APPROVED
    return {"status": status, "approved_at": now}


def _create_by_orm(
    to_create: list[tuple[_Item, ParsedTime, _Resolved]],
    *,
    run: SyncRun,
    erp: Connection,
    now: dt.datetime,
    pre: _Preload,
    already_posted: bool = False,
) -> int:
    """New entries through the ORM (databases without COPY): entries with history, then their
    deliveries, or, `already_posted`, their ERP refs (no delivery). Returns how many deliveries
    are new."""
    constants = _entry_constants(now, already_posted=already_posted)
    entries = [
        TimeEntry(**dict(zip(_ENTRY_COLUMNS, _entry_row(item, p, r), strict=True)), **constants)
        for item, p, r in to_create
    ]
    created = audited_bulk_create(model=TimeEntry, objs=entries, actor=run.actor)
    if already_posted:
        entry_type = ContentType.objects.get_for_model(TimeEntry)
        audited_bulk_create(
            model=ExternalRef,
            actor=run.actor,
            objs=[
                ExternalRef(
                    system=ERP_SYSTEM,
                    content_type=entry_type,
                    object_id=str(e.pk),
                    external_id=pre.posted[p.external_id],
                    last_synced_at=now,
                )
                for (_, p, _), e in zip(to_create, created, strict=True)
            ],
        )
        return 0
    return deliveries_enqueue(
        deliveries=[
            _delivery(entry, resolved, p, item, erp=erp, now=now, pre=pre)
            for (item, p, resolved), entry in zip(to_create, created, strict=True)
        ]
    )


# Columns of a new entry's delivery, in the order `_create_by_copy` gives them.
_DELIVERY_COLUMNS = ("object_id", "idempotency_key", "external_id", "payload", "correlation_id")


def _create_by_copy(
    to_create: list[tuple[_Item, ParsedTime, _Resolved]],
    *,
    run: SyncRun,
    erp: Connection,
    now: dt.datetime,
    pre: _Preload,
    already_posted: bool = False,
) -> int:
    """New entries on PostgreSQL: the rows `_create_by_orm` writes (entry + "+" history row
    attributed to the run, one pending delivery each, or the ERP ref + its history row), by
    COPY and without a model instance per row (sync.audit.audited_copy_create). New primary
    keys cannot collide with an existing idempotency key; a concurrent creator of the same entry
    hits the PSA id's unique constraint, which rolls this whole batch back (as the ORM path).
    Returns how many deliveries were written."""
    entry_ids = audited_copy_create(
        model=TimeEntry,
        columns=_ENTRY_COLUMNS,
        constants=_entry_constants(now, already_posted=already_posted),
        rows=[_entry_row(item, p, r) for item, p, r in to_create],
        actor=run.actor,
    )
    entry_type = ContentType.objects.get_for_model(TimeEntry).pk
    if already_posted:
        audited_copy_create(
            model=ExternalRef,
            columns=("object_id", "external_id"),
            constants={"system": ERP_SYSTEM, "content_type_id": entry_type, "last_synced_at": now},
            rows=[
                (str(pk), pre.posted[p.external_id])
                for pk, (_, p, _) in zip(entry_ids, to_create, strict=True)
            ],
            actor=run.actor,
        )
        return 0
    rows = []
    for pk, (item, p, resolved) in zip(entry_ids, to_create, strict=True):
        fields = _delivery_fields(
            pk=pk,
            version=1,
            work_date=p.work_date,
            hours=p.hours,
            billable=p.billable,
            bill_rate=p.rate,
            currency=p.currency,
            correlation_id=resolved.project.correlation_id or item.correlation_id,
            resolved=resolved,
            p=p,
            pre=pre,
        )
        rows.append(tuple(fields[name] for name in _DELIVERY_COLUMNS))
    copy_insert(
        model=Delivery,
        columns=_DELIVERY_COLUMNS,
        rows=rows,
        omit=["id"],
        constants={
            "operation": OPERATION,
            "record_version": 1,
            "connection_id": erp.pk,
            "content_type_id": entry_type,
            "next_attempt_at": now,
            "created_at": timezone.now(),
        },
    )
    return len(rows)


def _erp_ref(pre: _Preload, model: str, pk: int, *, fallback: str) -> dict[str, str]:
    """A NetSuite record reference: its internal id when we know it, else its external id."""
    known = pre.erp_refs.get((model, str(pk)))
    return {"id": known} if known else {"externalId": fallback}


def _delivery(
    entry: TimeEntry,
    resolved: _Resolved,
    p: ParsedTime,
    item: _Item,
    *,
    erp: Connection,
    now: dt.datetime,
    pre: _Preload,
) -> Delivery:
    """The ERP labour posting (NetSuite timeBill) for one canonical time entry version."""
    fields = _delivery_fields(
        pk=entry.pk,
        version=entry.version,
        work_date=entry.work_date,
        hours=entry.hours,
        billable=entry.billable,
        bill_rate=entry.bill_rate,
        currency=entry.currency_id,
        correlation_id=entry.correlation_id or item.correlation_id,
        resolved=resolved,
        p=p,
        pre=pre,
    )
    return Delivery(
        connection=erp,
        content_type=ContentType.objects.get_for_model(TimeEntry),
        operation=OPERATION,
        record_version=entry.version,
        next_attempt_at=now,
        **fields,
    )


def _delivery_fields(
    *,
    pk: int,
    version: int,
    work_date: dt.date,
    hours: Decimal,
    billable: bool,
    bill_rate: Decimal,
    currency: str,
    correlation_id: str,
    resolved: _Resolved,
    p: ParsedTime,
    pre: _Preload,
) -> dict[str, Any]:
    """The fields of a delivery that differ between entry versions."""
    # Keyed by the PSA's own id, not ours: stable across rebuilds, and the same key the ERP
    # already holds for time posted before Ledgerbridge, so history is never posted twice.
    external_id = f"{ERP_KEY_PREFIX}{p.external_id}"
    worker, project, task = resolved.worker, resolved.project, resolved.task
    amount = money_at_risk(hours=hours, bill_rate=bill_rate)
    department = pre.erp_refs.get(("costcentre", str(worker.cost_centre_id)))
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
        "department": {"id": department} if department else None,
        "memo": f"PSA time entry {p.external_id}",
    }
    # What to send (`record_type`, `body`) and what finance needs if it fails (amount at risk).
    payload = {
        "record_type": "timeBill",
        "body": body,
        "amount": str(amount),
        "currency": currency,
        "mapping_versions": resolved.versions,
    }
    return {
        "object_id": str(pk),
        "idempotency_key": f"erp:{OPERATION}:{pk}:v{version}",
        "external_id": external_id,
        "payload": payload,
        "correlation_id": correlation_id,
    }
