"""What a batch of time entries refers to, loaded with a fixed number of queries, and each
entry's references resolved into the facts the posting rules judge."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from django.contrib.contenttypes.models import ContentType

from sync.integrations.kantata.time_entries import ParsedTime
from sync.integrations.netsuite import time_bills
from sync.mappings.ownership import OwnershipBook
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
from sync.pipeline.models import Connection
from sync.pipeline.rules import Facts
from sync.pipeline.target_records import target_records_known

SOURCE_SYSTEM = "psa"
LEGAL_ENTITY_SET = "legal-entity"
CURRENCY_SET = "currency"


class ProjectRow(NamedTuple):
    pk: int
    code: str
    status: str
    legal_entity_id: int
    entity_code: str
    customer_name: str
    customer_status: str
    correlation_id: str


class TaskRow(NamedTuple):
    pk: int
    code: str
    status: str
    allows_time: bool
    project_id: int


class WorkerRow(NamedTuple):
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
class Preload:
    """Everything the batch needs, loaded with a fixed number of queries."""

    projects: dict[str, ProjectRow]
    tasks: dict[str, TaskRow]
    workers: dict[str, WorkerRow]
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


class Resolved(NamedTuple):
    facts: Facts
    project: ProjectRow | None
    task: TaskRow | None
    worker: WorkerRow | None
    subsidiary: str | None
    erp_currency: str | None
    versions: dict[str, int]


def source_refs(model: type, external_ids: set[str]) -> dict[str, str]:
    """{PSA id: canonical pk} of `model`'s records the PSA knows by `external_ids` (one query)."""
    return dict(
        ExternalRef.objects.filter(
            system=SOURCE_SYSTEM,
            content_type=ContentType.objects.get_for_model(model),
            external_id__any=external_ids,
        ).values_list("external_id", "object_id")
    )


def rows_by_external_id(
    model: type, row_type: type, columns: Sequence[str], refs: dict[str, str]
) -> dict:
    """{external id: row} of the records `refs` names (one query)."""
    by_pk = {
        values[0]: row_type(*values)
        for values in model.objects.filter(pk__any={int(pk) for pk in refs.values()}).values_list(
            *columns
        )
    }
    return {ext: by_pk[int(pk)] for ext, pk in refs.items() if int(pk) in by_pk}


def time_references_preload(
    *, parsed: list[ParsedTime], today: dt.date, erp: Connection | None = None
) -> Preload:
    """Load what `parsed` refers to: a fixed number of queries, whatever the batch size."""
    project_refs = source_refs(Project, {p.workspace_id for p in parsed})
    task_refs = source_refs(Task, {p.story_id for p in parsed})
    worker_refs = source_refs(Worker, {p.user_id for p in parsed})
    placeholder_refs = source_refs(RolePlaceholder, {p.user_id for p in parsed})

    projects = rows_by_external_id(Project, ProjectRow, _PROJECT_COLUMNS, project_refs)
    tasks = rows_by_external_id(Task, TaskRow, _TASK_COLUMNS, task_refs)
    workers = rows_by_external_id(Worker, WorkerRow, _WORKER_COLUMNS, worker_refs)
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
    return Preload(
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
            key.removeprefix(time_bills.KEY_PREFIX): target_id
            for key, target_id in target_records_known(
                connection=erp,
                record_type=time_bills.RECORD_TYPE,
                external_ids={time_bills.time_bill_key(p.external_id) for p in parsed},
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


def _day(project: ProjectRow | None, p: ParsedTime, pre: Preload) -> tuple:
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


def time_entry_resolve(p: ParsedTime, pre: Preload) -> Resolved:
    """The entry's project, task and worker, its mapped subsidiary and currency, and the facts
    the posting rules judge. No query: everything comes from `pre`."""
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
    return Resolved(facts, project, task, worker, subsidiary, erp_currency, versions)
