"""Revenue leakage: money the firm earned and has not billed or collected, by cause (selectors).

Each cause is one grouped query over the canonical model, in money per currency (never added
across currencies), per legal entity, customer and project; `leakage_records` lists the records
behind any figure, so every number on the dashboards drills down. Definitions: docs/kpis.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from reconciliation import kpi_math
from reconciliation.rollup import last_complete_month_end, rollup_rows
from reconciliation.scope import Scope, month_first
from sync.models import Invoice, Milestone, Payment, TimeEntry, UsageRecord
from sync.models.transactions import ApprovalStatus

MONEY = DecimalField(max_digits=20, decimal_places=4)


@dataclass(frozen=True)
class Cause:
    slug: str
    label: str
    noun: str  # what its records are
    splits_by_business_unit: bool


CAUSES = (
    Cause("unbilled_time", "Approved time not invoiced", "time entries", True),
    Cause("milestone_not_invoiced", "Completed milestone not invoiced", "milestones", False),
    Cause("usage_not_billed", "Usage not billed", "usage records", False),
    Cause("write_off", "Written off", "invoices", False),
)
CAUSE_BY_SLUG = {cause.slug: cause for cause in CAUSES}


@dataclass(frozen=True)
class LeakageRow:
    """One cause's money on one project (or customer, where the cause has no project)."""

    cause: str
    legal_entity: str
    customer_id: int
    customer: str
    project: str  # project code; blank for causes billed per customer (write-offs, usage)
    currency: str
    records: int
    amount: Decimal


def _days(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def _cutoff(as_of: dt.date, setting: str, default: int) -> dt.date:
    return as_of - dt.timedelta(days=_days(setting, default))


def _time_value() -> ExpressionWrapper:
    return ExpressionWrapper(F("hours") * F("bill_rate"), output_field=MONEY)


def _usage_value() -> ExpressionWrapper:
    return ExpressionWrapper(F("quantity") * F("unit_price"), output_field=MONEY)


def _collected() -> Coalesce:
    paid = (
        Payment.objects.filter(invoice=OuterRef("pk"))
        .exclude(status=Payment.Status.REVERSED)
        .values("invoice")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return Coalesce(Subquery(paid, output_field=MONEY), Value(Decimal(0)), output_field=MONEY)


def unbilled_cutoff(as_of: dt.date) -> dt.date:
    """The last work date that counts as unbilled-time leakage on `as_of`: time is billed per
    month worked, so a month's billable time leaks once the month has ended
    LEAKAGE_UNBILLED_DAYS ago and it is still not invoiced."""
    return last_complete_month_end(as_of=as_of, days=_days("LEAKAGE_UNBILLED_DAYS", 30))


def _unbilled_time(*, as_of: dt.date, scope: Scope) -> QuerySet:
    """Billable time approved or posted, not invoiced, of a month that ended
    LEAKAGE_UNBILLED_DAYS before `as_of` (read live: the records behind the figure)."""
    return TimeEntry.objects.filter(
        scope.q(
            date="work_date",
            legal_entity="project__legal_entity__code",
            business_unit="worker__cost_centre__code",
        ),
        billable=True,
        status__in=(ApprovalStatus.APPROVED, ApprovalStatus.POSTED),
        work_date__lte=unbilled_cutoff(as_of),
    )


def _unbilled_time_rollup(*, as_of: dt.date, scope: Scope) -> QuerySet:
    """The same time as `_unbilled_time`, summed per month in the rollup (dashboards)."""
    return rollup_rows(
        scope=scope,
        statuses=(ApprovalStatus.APPROVED, ApprovalStatus.POSTED),
        billable_only=True,
    ).filter(month__lte=month_first(unbilled_cutoff(as_of)))


def _milestones(*, as_of: dt.date, scope: Scope) -> QuerySet:
    """Milestones completed and not invoiced LEAKAGE_MILESTONE_DAYS after their due date."""
    return Milestone.objects.filter(
        scope.q(date="due_date", legal_entity="project__legal_entity__code"),
        status=Milestone.Status.COMPLETED,
        due_date__lte=_cutoff(as_of, "LEAKAGE_MILESTONE_DAYS", 7),
    )


def _usage(*, as_of: dt.date, scope: Scope) -> QuerySet:
    """Usage recorded or rated, not invoiced, of a month that ended LEAKAGE_UNBILLED_DAYS ago."""
    return UsageRecord.objects.filter(
        scope.q(date="period_date", legal_entity="contract__customer__legal_entity__code"),
        status__in=(UsageRecord.Status.RECORDED, UsageRecord.Status.RATED),
        period_date__lte=unbilled_cutoff(as_of),
    )


def _write_offs(*, as_of: dt.date, scope: Scope) -> QuerySet:
    """Invoices marked uncollectible: what was not collected of them."""
    return Invoice.objects.filter(
        scope.q(date="issue_date", legal_entity="legal_entity__code"),
        status=Invoice.Status.UNCOLLECTIBLE,
        issue_date__lte=as_of,
    ).annotate(outstanding=F("total") - _collected())


# Per cause: its records, the group-by columns, and the amount expression.
_GROUPS: dict[str, tuple[Callable[..., QuerySet], tuple[str, ...], Callable[[], Any]]] = {
    "unbilled_time": (
        _unbilled_time_rollup,
        ("project__legal_entity__code", "project__customer_id", "project__customer__name",
         "project__code", "currency"),
        lambda: F("value"),
    ),
    "milestone_not_invoiced": (
        _milestones,
        ("project__legal_entity__code", "project__customer_id", "project__customer__name",
         "project__code", "currency_id"),
        lambda: F("amount"),
    ),
    "usage_not_billed": (
        _usage,
        ("contract__customer__legal_entity__code", "contract__customer_id",
         "contract__customer__name", Value(""), "currency_id"),
        _usage_value,
    ),
    "write_off": (
        _write_offs,
        ("legal_entity__code", "customer_id", "customer__name", Value(""), "currency_id"),
        lambda: F("outstanding"),
    ),
}  # fmt: skip


def leakage_rows(*, as_of: dt.date, scope: Scope, causes: tuple[str, ...] = ()) -> list[LeakageRow]:
    """Every cause's money per legal entity, customer, project and currency (one grouped query a
    cause), largest first. `causes` limits it (default all)."""
    rows: list[LeakageRow] = []
    for slug in causes or tuple(_GROUPS):
        records, columns, amount = _GROUPS[slug]
        group = {f"g{i}": F(c) if isinstance(c, str) else c for i, c in enumerate(columns)}
        grouped = (
            records(as_of=as_of, scope=scope)
            .annotate(**group)
            .values_list(*group)
            .annotate(records=_count(slug), amount=Sum(amount()))
            .order_by()
        )
        for entity, customer_id, customer, project, currency, count, value in grouped:
            if not value:
                continue
            rows.append(
                LeakageRow(
                    cause=slug,
                    legal_entity=entity or "",
                    customer_id=customer_id,
                    customer=customer,
                    project=project or "",
                    currency=currency,
                    records=count,
                    amount=kpi_math.cents(value),
                )
            )
    rows.sort(key=lambda r: (-r.amount, r.cause, r.currency, r.project))
    return rows


def _count(cause: str) -> Count | Sum:
    return Sum("entries") if cause == "unbilled_time" else Count("id")


def leakage_totals(rows: list[LeakageRow]) -> dict[str, dict[str, Decimal]]:
    """Money per cause per currency of `rows`."""
    totals: dict[str, dict[str, Decimal]] = {}
    for row in rows:
        per = totals.setdefault(row.cause, {})
        per[row.currency] = per.get(row.currency, Decimal(0)) + row.amount
    return totals


# -- the records behind a figure ---------------------------------------------------------------
@dataclass(frozen=True)
class RecordTable:
    """Column labels and the rows' query (`values_list`): slice it for a page (a LIMIT the
    database plans for), iterate `all_rows()` for an export (streamed in chunks)."""

    columns: tuple[str, ...]
    values: QuerySet

    def first(self, n: int) -> list[tuple[Any, ...]]:
        return list(self.values[:n])

    def all_rows(self) -> Iterator[tuple[Any, ...]]:
        return self.values.iterator(chunk_size=2000)


_RECORD_COLUMNS = {
    "unbilled_time": (
        ("PSA id", "psa_id"),
        ("Project", "project__code"),
        ("Customer", "project__customer__name"),
        ("Legal entity", "project__legal_entity__code"),
        ("Worker", "worker__employee_number"),
        ("Work date", "work_date"),
        ("Status", "status"),
        ("Hours", "hours"),
        ("Bill rate", "bill_rate"),
        ("Currency", "currency_id"),
        ("Amount", "leak"),
    ),
    "milestone_not_invoiced": (
        ("Milestone", "name"),
        ("Project", "project__code"),
        ("Customer", "project__customer__name"),
        ("Legal entity", "project__legal_entity__code"),
        ("Due date", "due_date"),
        ("Status", "status"),
        ("Currency", "currency_id"),
        ("Amount", "leak"),
    ),
    "usage_not_billed": (
        ("Usage", "id"),
        ("Customer", "contract__customer__name"),
        ("Legal entity", "contract__customer__legal_entity__code"),
        ("Contract", "contract__name"),
        ("Period", "period_date"),
        ("Quantity", "quantity"),
        ("Unit", "unit"),
        ("Currency", "currency_id"),
        ("Amount", "leak"),
    ),
    "write_off": (
        ("Invoice", "number"),
        ("Customer", "customer__name"),
        ("Legal entity", "legal_entity__code"),
        ("Issued", "issue_date"),
        ("Total", "total"),
        ("Currency", "currency_id"),
        ("Not collected", "leak"),
    ),
}


def leakage_records(
    *,
    cause: str,
    as_of: dt.date,
    scope: Scope,
    project: str = "",
    customer_id: int | None = None,
    currency: str = "",
) -> RecordTable:
    """The records behind one cause's figure, narrowed to a project, customer or currency:
    time by project and work date, the others largest amount first. Rows are read lazily
    (`iterator`), so an export streams."""
    if cause == "unbilled_time":
        found = _unbilled_time(as_of=as_of, scope=scope).annotate(leak=_time_value())
        order: tuple[str, ...] = ("project_id", "work_date", "pk")  # the (project, date) index
    else:
        records, _columns, amount = _GROUPS[cause]
        found = records(as_of=as_of, scope=scope).annotate(leak=amount())
        order = ("-leak", "pk")
    customer_path = {
        "unbilled_time": "project__customer_id",
        "milestone_not_invoiced": "project__customer_id",
        "usage_not_billed": "contract__customer_id",
        "write_off": "customer_id",
    }[cause]
    if project and cause in ("unbilled_time", "milestone_not_invoiced"):
        found = found.filter(project__code=project)
    if customer_id is not None:
        found = found.filter(**{customer_path: customer_id})
    if currency:
        found = found.filter(currency_id=currency)
    columns = _RECORD_COLUMNS[cause]
    values = found.order_by(*order).values_list(*(path for _, path in columns))
    return RecordTable(columns=tuple(label for label, _ in columns), values=values)
