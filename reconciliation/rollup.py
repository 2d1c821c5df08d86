"""The time rollup: time entries summed per month worked, so dashboards read a few thousand rows
instead of scanning a million entries (PostgreSQL took ~1.6 s for that one GROUP BY at 1,000,000
entries on the 2-core VM; bench/README.md "Dashboards").

Rebuilt wholesale by one INSERT … SELECT in the database (`time_rollup_refresh`, every
ROLLUP_SECONDS by beat and on first read), so the figures are at most that old and the page says
so; the records behind a figure are always read live.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, DecimalField, ExpressionWrapper, F, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from reconciliation.models import RollupState, TimeRollup
from reconciliation.scope import Scope, month_first, month_last
from sync.models import TimeEntry
from sync.models.transactions import ApprovalStatus

ROLLUP = "time"
ROLLUP_SECONDS = 300
STATUSES = (ApprovalStatus.SUBMITTED, ApprovalStatus.APPROVED, ApprovalStatus.POSTED)
_COLUMNS = (
    "month",
    "project_id",
    "cost_centre_id",
    "currency",
    "status",
    "billable",
    "entries",
    "hours",
    "value",
    "oldest",
)


def _grouped() -> QuerySet:
    value = ExpressionWrapper(
        F("hours") * F("bill_rate"), output_field=DecimalField(max_digits=24, decimal_places=4)
    )
    return (
        TimeEntry.objects.filter(status__in=STATUSES)
        .annotate(
            g_month=TruncMonth("work_date"),
            g_cost_centre=F("worker__cost_centre_id"),
            g_currency=F("currency_id"),
        )
        .values("g_month", "project_id", "g_cost_centre", "g_currency", "status", "billable")
        .annotate(
            n=Count("id"),
            total_hours=Sum("hours"),
            total_value=Sum(value),
            first=Min("work_date"),
        )
        .order_by()
    )


def time_rollup_refresh() -> RollupState:
    """Rebuild the time rollup in one transaction (readers see the old rows until it commits;
    two rebuilds queue on the state row). Returns the state: when, how long, how many rows."""
    started = time.perf_counter()
    with transaction.atomic():
        state = RollupState.objects.select_for_update().filter(name=ROLLUP).first()
        TimeRollup.objects.all().delete()
        select, params = _grouped().query.sql_with_params()
        table = connection.ops.quote_name(TimeRollup._meta.db_table)
        columns = ", ".join(
            connection.ops.quote_name(TimeRollup._meta.get_field(c.removesuffix("_id")).column)
            for c in _COLUMNS
        )
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({columns}) {select}", params)
            rows = cursor.rowcount
        values = {
            "refreshed_at": timezone.now(),
            "seconds": time.perf_counter() - started,
            "rows": max(rows, 0),
        }
        if state is None:
            state = RollupState.objects.create(name=ROLLUP, **values)
        else:
            RollupState.objects.filter(pk=state.pk).update(**values)
            state.refresh_from_db()
    return state


def time_rollup_state() -> RollupState:
    """The rollup's state, rebuilding it first if it was never built (a fresh database)."""
    state = RollupState.objects.filter(name=ROLLUP).first()
    return state or time_rollup_refresh()


def last_complete_month_end(*, as_of: dt.date, days: int) -> dt.date:
    """The last day of the latest month that ended at least `days` days before `as_of`."""
    cutoff = as_of - dt.timedelta(days=days)
    return cutoff if cutoff == month_last(cutoff) else month_first(cutoff) - dt.timedelta(days=1)


def rollup_rows(*, scope: Scope, statuses: tuple[str, ...], billable_only: bool) -> QuerySet:
    """Rollup rows of `statuses` within `scope` (its months; legal entity through the project;
    business unit = cost centre)."""
    where = Q(status__in=statuses)
    if billable_only:
        where &= Q(billable=True)
    if scope.period_from:
        where &= Q(month__gte=month_first(scope.period_from))
    if scope.period_to:
        where &= Q(month__lte=month_first(scope.period_to))
    if scope.legal_entity:
        where &= Q(project__legal_entity__code=scope.legal_entity)
    if scope.business_unit:
        where &= Q(cost_centre__code=scope.business_unit)
    return TimeRollup.objects.filter(where)


@dataclass(frozen=True)
class Waiting:
    """Time in one status and currency: entries, hours, value at bill rate, oldest work date."""

    currency: str
    entries: int
    hours: Decimal
    value: Decimal
    oldest: dt.date


def time_waiting(*, scope: Scope, status: str, billable_only: bool = False) -> list[Waiting]:
    rows = (
        rollup_rows(scope=scope, statuses=(status,), billable_only=billable_only)
        .values_list("currency")
        .annotate(Sum("entries"), Sum("hours"), Sum("value"), Min("oldest"))
        .order_by("currency")
    )
    return [Waiting(*row) for row in rows]


def unbilled_by_month(*, scope: Scope) -> list[tuple[dt.date, str, int, Decimal]]:
    """Billable time approved or posted (not invoiced) per month worked and currency:
    (month, currency, entries, value), oldest month first."""
    return list(
        rollup_rows(
            scope=scope,
            statuses=(ApprovalStatus.APPROVED, ApprovalStatus.POSTED),
            billable_only=True,
        )
        .values_list("month", "currency")
        .annotate(Sum("entries"), Sum("value"))
        .order_by("month", "currency")
    )
