"""What a batch of expenses refers to, loaded with a fixed number of queries, and each expense's
references resolved into the facts the posting rules judge.

The same look-ups as time posting (sync.pipeline.time_posting.references: workspace and user
refs, projects, workers, periods, the legal-entity and currency mappings, ownership), without
the WBS task, plus the expense-category mapping and the ERP's currency ids.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from django.contrib.contenttypes.models import ContentType

from sync.integrations.kantata.expenses import ParsedExpense
from sync.integrations.netsuite import expense_reports
from sync.mappings.ownership import OwnershipBook
from sync.mappings.resolve import MappingTable
from sync.mappings.selectors import mapping_tables_load, ownership_book_load
from sync.models import (
    AccountingPeriod,
    Currency,
    Expense,
    ExternalRef,
    Project,
    RolePlaceholder,
    Worker,
)
from sync.pipeline.models import Connection
from sync.pipeline.rules import Facts
from sync.pipeline.target_records import target_records_known
from sync.pipeline.time_posting.references import (
    CURRENCY_SET,
    LEGAL_ENTITY_SET,
    ProjectRow,
    WorkerRow,
    rows_by_external_id,
    source_refs,
)

# PSA expense category → ERP expense category. Optional: without a published version the
# PSA's category names pass through (as ISO codes do without a currency mapping).
CATEGORY_SET = "expense-category"
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
    workers: dict[str, WorkerRow]
    placeholders: set[str]
    currencies: set[str]
    existing: dict[str, Expense]
    # PSA id → the ERP's internal id, for expenses the ERP already holds under our key (posted
    # before Ledgerbridge, learned from the ERP's own listing: TargetRecord).
    posted: dict[str, str]
    periods: dict[int, list[AccountingPeriod]]
    # (model, our pk or currency code) → the ERP's internal id.
    erp_refs: dict[tuple[str, str], str]
    mappings: MappingTable
    ownership: OwnershipBook
    # (legal entity, currency, category, day) → (subsidiary, ERP currency, ERP category,
    # versions, period name, period status): made once per batch.
    days: dict[tuple, tuple] = field(default_factory=dict)


class Resolved(NamedTuple):
    facts: Facts
    project: ProjectRow | None
    worker: WorkerRow | None
    subsidiary: str | None
    erp_currency: str | None  # the ERP's internal id of the (mapped) currency
    erp_category: str | None  # None when the published category mapping lacks it
    versions: dict[str, int]


def expense_references_preload(
    *, parsed: list[ParsedExpense], today: dt.date, erp: Connection | None = None
) -> Preload:
    """Load what `parsed` refers to: a fixed number of queries, whatever the batch size."""
    project_refs = source_refs(Project, {p.workspace_id for p in parsed})
    worker_refs = source_refs(Worker, {p.user_id for p in parsed})
    placeholder_refs = source_refs(RolePlaceholder, {p.user_id for p in parsed})
    projects = rows_by_external_id(Project, ProjectRow, _PROJECT_COLUMNS, project_refs)
    workers = rows_by_external_id(Worker, WorkerRow, _WORKER_COLUMNS, worker_refs)
    periods: dict[int, list[AccountingPeriod]] = defaultdict(list)
    for period in AccountingPeriod.objects.filter(
        legal_entity_id__in={p.legal_entity_id for p in projects.values()}
    ):
        periods[period.legal_entity_id].append(period)
    wanted = [
        *(str(r.pk) for r in projects.values()),
        *(str(r.pk) for r in workers.values()),
        *(str(r.cost_centre_id) for r in workers.values() if r.cost_centre_id),
    ]
    erp_refs = {
        (model, object_id): external_id
        for model, object_id, external_id in ExternalRef.objects.filter(
            system="erp",
            content_type__model__in=["project", "worker", "costcentre"],
            object_id__any=wanted,
        ).values_list("content_type__model", "object_id", "external_id")
    }
    # Every currency's ERP id (a handful): the mapping may name a code no expense carries.
    erp_refs.update(
        (("currency", code), external_id)
        for code, external_id in ExternalRef.objects.filter(
            system="erp", content_type=ContentType.objects.get_for_model(Currency)
        ).values_list("object_id", "external_id")
    )
    keys = {expense_reports.expense_report_key(p.external_id) for p in parsed}
    posted = (
        {
            key.removeprefix(expense_reports.KEY_PREFIX): target_id
            for key, target_id in target_records_known(
                connection=erp, record_type=expense_reports.RECORD_TYPE, external_ids=keys
            ).items()
        }
        if erp is not None
        else {}
    )
    return Preload(
        projects=projects,
        workers=workers,
        placeholders=set(placeholder_refs),
        currencies=set(Currency.objects.values_list("code", flat=True)),
        existing={
            e.psa_id: e for e in Expense.objects.filter(psa_id__any={p.external_id for p in parsed})
        },
        posted=posted,
        periods=periods,
        erp_refs=erp_refs,
        mappings=mapping_tables_load(sets=[LEGAL_ENTITY_SET, CURRENCY_SET, CATEGORY_SET]),
        # Ownership is judged on the day the change is processed, not the expense's date.
        ownership=ownership_book_load(on=today),
    )


def _period_for(periods: list[AccountingPeriod], day: dt.date) -> AccountingPeriod | None:
    for period in periods:
        if period.start_date <= day <= period.end_date:
            return period
    return None


def _day(project: ProjectRow | None, p: ParsedExpense, pre: Preload) -> tuple:
    """(subsidiary, ERP currency, ERP category, versions, period name, period status) of an
    expense of `project` on its date, made once per (entity, currency, category, day)."""
    entity_id = project.legal_entity_id if project else None
    key = (entity_id, p.currency, p.category, p.incurred_date)
    found = pre.days.get(key)
    if found is not None:
        return found
    day = p.incurred_date
    versions: dict[str, int] = {}
    subsidiary = None
    if project is not None:
        mapped = pre.mappings.lookup(LEGAL_ENTITY_SET, project.entity_code, day)
        if mapped:
            subsidiary = mapped.target_value
            versions.update(mapped.stamp)
    erp_currency: str | None = p.currency
    if CURRENCY_SET in pre.mappings.set_slugs:
        mapped = pre.mappings.lookup(CURRENCY_SET, p.currency, day)
        erp_currency = mapped.target_value if mapped else None
        if mapped:
            versions.update(mapped.stamp)
    erp_category: str | None = p.category
    if CATEGORY_SET in pre.mappings.set_slugs:
        mapped = pre.mappings.lookup(CATEGORY_SET, p.category, day)
        erp_category = mapped.target_value if mapped else None
        if mapped:
            versions.update(mapped.stamp)
    period = _period_for(pre.periods.get(entity_id, []), day) if project else None
    found = pre.days[key] = (
        subsidiary,
        erp_currency,
        erp_category,
        versions,
        f"{period.start_date:%b %Y}" if period else None,
        period.status if period else None,
    )
    return found


def expense_resolve(p: ParsedExpense, pre: Preload) -> Resolved:
    """The expense's project and worker, its mapped subsidiary, currency and category, and the
    facts the posting rules judge. No query: everything comes from `pre`."""
    project = pre.projects.get(p.workspace_id)
    worker = pre.workers.get(p.user_id)
    subsidiary, erp_currency, erp_category, versions, period_name, period_status = _day(
        project, p, pre
    )
    entity_code = project.entity_code if project else None
    # The report names its currency by the ERP's id: one the ERP has not sent us is unknown.
    erp_currency_id = pre.erp_refs.get(("currency", erp_currency)) if erp_currency else None
    facts = Facts(
        work_date=p.incurred_date,
        project_ref=p.workspace_id,
        task_ref="",
        worker_ref=p.user_id,
        project_code=project.code if project else None,
        project_status=project.status if project else None,
        worker_number=worker.employee_number if worker else None,
        worker_is_placeholder=worker is None and p.user_id in pre.placeholders,
        worker_status=worker.employment_status if worker else None,
        worker_cost_centre=worker.cost_centre_code if worker else None,
        legal_entity=entity_code,
        legal_entity_mapped=entity_code is None or subsidiary is not None,
        currency=p.currency,
        currency_known=p.currency in pre.currencies
        and (erp_currency is None or erp_currency_id is not None),
        currency_mapped=erp_currency is not None,
        period_name=period_name,
        period_status=period_status,
        customer_name=project.customer_name if project else None,
        customer_status=project.customer_status if project else None,
        billable=p.billable,
    )
    return Resolved(facts, project, worker, subsidiary, erp_currency_id, erp_category, versions)
