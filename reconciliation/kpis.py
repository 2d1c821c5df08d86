"""Today's KPIs read from the canonical model, the queues and the connector counts (selectors).

Each KPI is computed by the database in a fixed number of grouped queries, whatever the volume;
the arithmetic that is not a sum lives in `reconciliation.kpi_math`. Definitions and choices:
docs/kpis.md. Money stays per currency (no conversion).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db.models import (
    Avg,
    Case,
    Count,
    DecimalField,
    DurationField,
    ExpressionWrapper,
    F,
    Min,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import ExtractMonth, ExtractYear
from django.utils import timezone
from redis.exceptions import RedisError

from reconciliation import kpi_math
from reconciliation.kpis_billing import (
    kpi_approved_to_invoiced_lag,
    kpi_invoice_cycle_time,
    kpi_project_setup_sla,
)
from reconciliation.leakage import leakage_rows, leakage_totals
from reconciliation.scope import Scope
from sync.models import Invoice, Payment, TimeEntry
from sync.models.transactions import ApprovalStatus
from sync.pipeline.models import Delivery, ExceptionItem

MONEY = DecimalField(max_digits=20, decimal_places=4)
MTTR_WINDOW = dt.timedelta(days=30)
ISSUED = (Invoice.Status.OPEN, Invoice.Status.PAID, Invoice.Status.UNCOLLECTIBLE)


def _value() -> ExpressionWrapper:
    return ExpressionWrapper(F("hours") * F("bill_rate"), output_field=MONEY)


def _money(value: Any) -> str:
    return str(kpi_math.cents(Decimal(value or 0)))


def _days(since: dt.date | None, as_of: dt.date) -> int | None:
    return None if since is None else (as_of - since).days


def kpi_dso(*, as_of: dt.date) -> dict[str, Any]:
    """DSO by countback per currency: receivables at `as_of` against monthly credit sales."""
    issued = Invoice.objects.filter(status__in=ISSUED, issue_date__lte=as_of)
    totals = dict(issued.values_list("currency_id").annotate(total=Sum("total")))
    paid = dict(
        Payment.objects.filter(invoice__in=issued, received_date__lte=as_of)
        .exclude(status=Payment.Status.REVERSED)
        .values_list("currency_id")
        .annotate(paid=Sum("amount"))
    )
    sales: dict[str, dict[tuple[int, int], Decimal]] = defaultdict(dict)
    for currency, year, month, amount in (
        issued.annotate(y=ExtractYear("issue_date"), m=ExtractMonth("issue_date"))
        .values_list("currency_id", "y", "m")
        .annotate(amount=Sum("total"))
    ):
        sales[currency][(year, month)] = amount
    result = {}
    for currency in sorted(totals):
        receivables = totals[currency] - paid.get(currency, Decimal(0))
        days = kpi_math.dso_countback(
            receivables=receivables, sales_by_month=sales[currency], as_of=as_of
        )
        result[currency] = {
            "receivables": _money(receivables),
            "days": None if days is None else str(days),
        }
    return result


def _time(status: str, as_of: dt.date, where: Q | None) -> Any:
    return TimeEntry.objects.filter(where or Q(), status=status, work_date__lte=as_of)


def kpi_unbilled_time(*, as_of: dt.date, where: Q | None = None) -> dict[str, Any]:
    """WIP: billable time approved or posted, not invoiced, at bill rate, by currency and age.
    `where` narrows the time entries (a dashboard's scope)."""
    # Newest first: an entry falls in the first bucket whose oldest work date it is not before.
    bucket = Case(
        *(
            When(work_date__gte=as_of - dt.timedelta(days=limit), then=Value(label))
            for limit, label in kpi_math.AGE_BUCKETS
            if limit is not None
        ),
        default=Value(kpi_math.AGE_BUCKETS[-1][1]),
    )
    rows = (
        TimeEntry.objects.filter(
            where or Q(),
            status__in=(ApprovalStatus.APPROVED, ApprovalStatus.POSTED),
            billable=True,
            work_date__lte=as_of,
        )
        .annotate(bucket=bucket)
        .values_list("currency_id", "bucket")
        .annotate(entries=Count("id"), value=Sum(_value()))
        .order_by("currency_id", "bucket")
    )
    result: dict[str, Any] = {}
    for currency, label, entries, value in rows:
        per = result.setdefault(currency, {"value": Decimal(0), "entries": 0, "by_age": {}})
        per["value"] += value
        per["entries"] += entries
        per["by_age"][label] = _money(value)
    for per in result.values():
        per["value"] = _money(per["value"])
    return result


def kpi_time_waiting(*, status: str, as_of: dt.date, where: Q | None = None) -> dict[str, Any]:
    """Time entries in `status` (submitted: the approval backlog; approved: unposted time):
    count, hours and value per currency, and the oldest work date's age in days."""
    rows = (
        _time(status, as_of, where)
        .values_list("currency_id")
        .annotate(
            entries=Count("id"),
            total_hours=Sum("hours"),
            value=Sum(_value()),
            oldest=Min("work_date"),
        )
        .order_by("currency_id")
    )
    return {
        currency: {
            "entries": entries,
            "hours": _money(hours),
            "value": _money(value),
            "oldest_days": _days(oldest, as_of),
        }
        for currency, entries, hours, value, oldest in rows
    }


def kpi_queue_backlog(*, now: dt.datetime) -> dict[str, Any]:
    """Open exception items per queue: count, money at risk per currency, oldest age in days
    and the number past their SLA."""
    open_items = ExceptionItem.objects.filter(status__in=ExceptionItem.OPEN_STATUSES)
    result: dict[str, Any] = {}
    for queue, count, past_sla, oldest in (
        open_items.values_list("queue")
        .annotate(
            count=Count("id"),
            past=Count("id", filter=Q(sla_due_at__lt=now)),
            oldest=Min("first_failed_at"),
        )
        .order_by("queue")
    ):
        result[queue] = {
            "open": count,
            "past_sla": past_sla,
            "oldest_days": (now - oldest).days,
            "money_at_risk": {},
        }
    for queue, currency, money in (
        open_items.exclude(money_at_risk=None)
        .values_list("queue", "currency")
        .annotate(money=Sum("money_at_risk"))
        .order_by("queue", "currency")
    ):
        result[queue]["money_at_risk"][currency or "?"] = _money(money)
    return result


def kpi_mttr(*, now: dt.datetime, window: dt.timedelta = MTTR_WINDOW) -> dict[str, Any]:
    """Mean hours from first failure to resolution of items resolved within `window`, per queue."""
    spent = ExpressionWrapper(F("closed_at") - F("first_failed_at"), output_field=DurationField())
    rows = (
        ExceptionItem.objects.filter(
            status=ExceptionItem.Status.RESOLVED, closed_at__gte=now - window, closed_at__lte=now
        )
        .values_list("queue")
        .annotate(resolved=Count("id"), mean=Avg(spent))
        .order_by("queue")
    )
    return {
        queue: {
            "resolved": resolved,
            "mean_hours": str(kpi_math.tenths(Decimal(mean.total_seconds()) / 3600)),
        }
        for queue, resolved, mean in rows
    }


def kpi_retries_per_delivered(*, now: dt.datetime, window: dt.timedelta = MTTR_WINDOW) -> Any:
    """Delivery attempts ÷ records delivered within `window` (1.0: every record at once)."""
    delivered = Delivery.objects.filter(
        state=Delivery.State.DELIVERED, delivered_at__gte=now - window
    ).aggregate(records=Count("id"), attempts=Sum("attempts"))
    rate = kpi_math.ratio(delivered["attempts"] or 0, delivered["records"])
    return {
        "delivered": delivered["records"],
        "attempts_per_record": None if rate is None else str(rate),
    }


def kpi_api_health(*, redis: Any) -> dict[str, Any]:
    """Per connection, from the vendor request counts every process adds up in Redis: success
    rate (2xx ÷ all), business (4xx) and technical (429, 5xx, timeouts, errors) failures apart,
    and p95 latency as the upper bound of its histogram bucket."""
    from sync.connectors.stats import requests_read

    counts, histograms = requests_read(redis)
    per: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (connection, outcome), n in counts.items():
        per[connection][outcome] += n
    result = {}
    for connection in sorted(per):
        outcomes = per[connection]
        total = sum(outcomes.values())
        p95 = kpi_math.histogram_quantile(histograms.get(connection, ([], 0.0))[0], Decimal("0.95"))
        rate = kpi_math.ratio(outcomes.get("2xx", 0), total)
        result[connection] = {
            "requests": total,
            "success_rate": None if rate is None else str(rate),
            "business_failures": outcomes.get("4xx", 0),
            "technical_failures": total - outcomes.get("2xx", 0) - outcomes.get("4xx", 0),
            "p95_seconds": None if p95.seconds is None else str(p95.seconds),
            "p95_beyond_last_bucket": p95.beyond_last_bucket,
        }
    return result


def kpis_compute(*, as_of: dt.date | None = None, redis: Any = None) -> dict[str, Any]:
    """Every KPI this release computes, as JSON-ready values (money and rates as strings)."""
    now = timezone.now()
    as_of = as_of or timezone.localdate(now)
    result: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "dso": kpi_dso(as_of=as_of),
        "unbilled_time": kpi_unbilled_time(as_of=as_of),
        "approval_backlog": kpi_time_waiting(status=ApprovalStatus.SUBMITTED, as_of=as_of),
        "unposted_time": kpi_time_waiting(status=ApprovalStatus.APPROVED, as_of=as_of),
        "queue_backlog": kpi_queue_backlog(now=now),
        "mttr": kpi_mttr(now=now),
        "retries": kpi_retries_per_delivered(now=now),
        "approved_to_invoiced_lag": kpi_approved_to_invoiced_lag(as_of=as_of),
        "invoice_cycle_time": kpi_invoice_cycle_time(as_of=as_of),
        "project_setup_sla": kpi_project_setup_sla(as_of=as_of),
        "leakage": {
            cause: {currency: _money(amount) for currency, amount in sorted(per.items())}
            for cause, per in leakage_totals(leakage_rows(as_of=as_of, scope=Scope())).items()
        },
    }
    if redis is not None:
        try:
            result["api_health"] = kpi_api_health(redis=redis)
        except RedisError as exc:
            result["api_health"] = {"unavailable": str(exc)}
    return result
