"""The records behind a dashboard figure that is not a leakage cause (selectors): time waiting
or unbilled by age, and cash received in a month. Leakage's own records: `leakage.leakage_records`.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import DecimalField, ExpressionWrapper, F, Sum
from django.db.models.functions import TruncMonth

from reconciliation import kpi_math
from reconciliation.leakage import RecordTable
from reconciliation.scope import Scope, month_first, month_last
from sync.models import Payment, TimeEntry
from sync.models.transactions import ApprovalStatus

MONEY = DecimalField(max_digits=20, decimal_places=4)

# What each time figure counts: the statuses and whether only billable time.
TIME_KINDS = {
    "wip": ((ApprovalStatus.APPROVED, ApprovalStatus.POSTED), True),
    "approval_backlog": ((ApprovalStatus.SUBMITTED,), False),
    "unposted": ((ApprovalStatus.APPROVED,), False),
}
_TIME_COLUMNS = (
    ("PSA id", "psa_id"),
    ("Project", "project__code"),
    ("Legal entity", "project__legal_entity__code"),
    ("Worker", "worker__employee_number"),
    ("Work date", "work_date"),
    ("Status", "status"),
    ("Hours", "hours"),
    ("Bill rate", "bill_rate"),
    ("Currency", "currency_id"),
    ("Value", "value"),
)


def time_records(
    *, kind: str, as_of: dt.date, scope: Scope, currency: str = "", month: dt.date | None = None
) -> RecordTable:
    """Time entries behind a time figure (`TIME_KINDS`), in a currency and month worked,
    by project and work date."""
    statuses, billable_only = TIME_KINDS[kind]
    found = TimeEntry.objects.filter(
        scope.q(
            date="work_date",
            legal_entity="project__legal_entity__code",
            business_unit="worker__cost_centre__code",
        ),
        status__in=statuses,
        work_date__lte=as_of,
    )
    if billable_only:
        found = found.filter(billable=True)
    if currency:
        found = found.filter(currency_id=currency)
    if month is not None:
        found = found.filter(work_date__gte=month_first(month), work_date__lte=month_last(month))
    values = (
        found.annotate(value=ExpressionWrapper(F("hours") * F("bill_rate"), output_field=MONEY))
        .order_by("project_id", "work_date", "pk")  # the (project, work date) index
        .values_list(*(path for _, path in _TIME_COLUMNS))
    )
    return RecordTable(columns=tuple(label for label, _ in _TIME_COLUMNS), values=values)


def payment_records(*, month: dt.date, scope: Scope, currency: str = "") -> RecordTable:
    """Payments received in `month` (not reversed), newest first."""
    found = Payment.objects.filter(
        scope.q(date="received_date", legal_entity="invoice__legal_entity__code"),
        received_date__gte=month_first(month),
        received_date__lte=month_last(month),
    ).exclude(status=Payment.Status.REVERSED)
    if currency:
        found = found.filter(currency_id=currency)
    columns = (
        ("Invoice", "invoice__number"),
        ("Customer", "invoice__customer__name"),
        ("Legal entity", "invoice__legal_entity__code"),
        ("Received", "received_date"),
        ("Status", "status"),
        ("Currency", "currency_id"),
        ("Amount", "amount"),
    )
    values = found.order_by("-received_date", "pk").values_list(*(path for _, path in columns))
    return RecordTable(columns=tuple(label for label, _ in columns), values=values)


def cash_by_month(
    *, scope: Scope, since: dt.date, until: dt.date
) -> list[tuple[dt.date, str, str]]:
    """Cash received (payments not reversed) per month and currency: (first of month, currency,
    amount to the cent), oldest month first."""
    rows = (
        Payment.objects.filter(
            scope.q(date="received_date", legal_entity="invoice__legal_entity__code"),
            received_date__gte=since,
            received_date__lte=until,
        )
        .exclude(status=Payment.Status.REVERSED)
        .annotate(month=TruncMonth("received_date"))
        .values_list("month", "currency_id")
        .annotate(total=Sum("amount"))
        .order_by("month", "currency_id")
    )
    return [(month, currency, str(kpi_math.cents(total))) for month, currency, total in rows]
