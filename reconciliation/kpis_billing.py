"""KPIs of billing and set-up (selectors): approved-to-invoiced lag, invoice cycle time, project
set-up SLA. Grouped in the database (per currency and day count), the quantiles in
`kpi_math`; definitions and choices in docs/kpis.md."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from statistics import median
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    DateField,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncDate

from reconciliation import kpi_math
from sync.models import (
    ExternalRef,
    InvoiceCandidate,
    InvoiceLine,
    Project,
    TimeEntry,
)
from sync.models.billing import InvoiceCandidateSource
from sync.models.transactions import ApprovalStatus

MONEY = DecimalField(max_digits=24, decimal_places=4)
WINDOW = dt.timedelta(days=90)


def _issued() -> Subquery:
    """The issue date of the invoice a candidate's lines are on."""
    return Subquery(
        InvoiceLine.objects.filter(
            candidate=OuterRef("candidate"), invoice__issue_date__isnull=False
        )
        .order_by("invoice__issue_date")
        .values("invoice__issue_date")[:1],
        output_field=DateField(),
    )


def _quantiles(pairs: list[tuple[Decimal, Decimal]]) -> dict[str, str | None]:
    median_days = kpi_math.weighted_quantile(pairs, Decimal("0.5"))
    p90 = kpi_math.weighted_quantile(pairs, Decimal("0.9"))
    return {
        "median_days": None if median_days is None else str(median_days),
        "p90_days": None if p90 is None else str(p90),
    }


def kpi_approved_to_invoiced_lag(*, as_of: dt.date) -> dict[str, Any]:
    """Per currency: days from approval to the invoice, weighted by amount — billable time on
    invoices issued in the 90 days up to `as_of`, and billable time approved but not invoiced,
    aged against `as_of` (a lag still growing); median and p90 of both together."""
    days: dict[str, dict[int, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    invoiced = (
        InvoiceCandidateSource.objects.filter(
            time_entry__isnull=False,
            time_entry__approved_at__isnull=False,
            candidate__status=InvoiceCandidate.Status.INVOICED,
        )
        .annotate(issued=_issued())
        .filter(issued__gte=as_of - WINDOW, issued__lte=as_of)
        .annotate(approved=TruncDate("time_entry__approved_at"))
        .values_list("candidate__currency_id", "issued", "approved")
        .annotate(
            amount=Sum(ExpressionWrapper(F("quantity") * F("unit_amount"), output_field=MONEY))
        )
        .order_by()
    )
    for currency, issued, approved, amount in invoiced:
        days[currency][(issued - approved).days] += amount
        totals[currency]["invoiced"] += amount
    waiting = (
        TimeEntry.objects.filter(
            billable=True,
            status__in=(ApprovalStatus.APPROVED, ApprovalStatus.POSTED),
            approved_at__isnull=False,
        )
        .annotate(approved=TruncDate("approved_at"))
        .filter(approved__lte=as_of)
        .values_list("currency_id", "approved")
        .annotate(amount=Sum(ExpressionWrapper(F("hours") * F("bill_rate"), output_field=MONEY)))
        .order_by()
    )
    for currency, approved, amount in waiting:
        days[currency][(as_of - approved).days] += amount
        totals[currency]["waiting"] += amount
    return {
        currency: {
            **_quantiles([(Decimal(d), a) for d, a in sorted(per.items())]),
            "invoiced_amount": str(kpi_math.cents(totals[currency]["invoiced"])),
            "waiting_amount": str(kpi_math.cents(totals[currency]["waiting"])),
        }
        for currency, per in sorted(days.items())
    }


def _month_end(first: dt.date) -> dt.date:
    return (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def kpi_invoice_cycle_time(*, as_of: dt.date) -> dict[str, Any]:
    """Per billing trigger (time, milestone, usage): median days from the trigger to the issued
    invoice, over candidates invoiced in the 90 days up to `as_of`. The trigger is the end of the
    billed month for time and usage, and the day Ledgerbridge saw the milestone completed (its
    candidate made) for a milestone."""
    rows = (
        InvoiceCandidate.objects.filter(status=InvoiceCandidate.Status.INVOICED)
        .annotate(
            issued=Subquery(
                InvoiceLine.objects.filter(
                    candidate=OuterRef("pk"), invoice__issue_date__isnull=False
                )
                .order_by("invoice__issue_date")
                .values("invoice__issue_date")[:1],
                output_field=DateField(),
            )
        )
        .filter(issued__gte=as_of - WINDOW, issued__lte=as_of)
        .values_list("source_kind", "period_start", "created_at", "issued")
    )
    per: dict[str, list[int]] = defaultdict(list)
    for kind, period_start, created_at, issued in rows:
        trigger = _month_end(period_start) if period_start else created_at.date()
        per[kind].append(max((issued - trigger).days, 0))
    return {
        kind: {
            "invoices": len(values),
            "median_days": str(kpi_math.tenths(Decimal(median(values)))),
        }
        for kind, values in sorted(per.items())
    }


def kpi_project_setup_sla(*, as_of: dt.date) -> dict[str, Any]:
    """Projects of won deals: days from the deal's close date to the ERP job (its ERP link),
    against PROJECT_SETUP_SLA_DAYS (2): set up in the 90 days up to `as_of` (count, median,
    within target), and waiting (won, no ERP job yet: count, oldest in days)."""
    target = int(getattr(settings, "PROJECT_SETUP_SLA_DAYS", 2))
    won = dict(
        Project.objects.filter(
            contract__opportunity__close_date__isnull=False,
            contract__opportunity__close_date__lte=as_of,
        ).values_list("pk", "contract__opportunity__close_date")
    )
    linked = dict(
        ExternalRef.objects.filter(
            system=ExternalRef.System.ERP,
            content_type=ContentType.objects.get_for_model(Project),
            object_id__in=[str(pk) for pk in won],
        ).values_list("object_id", "created_at")
    )
    durations, waiting = [], []
    for pk, closed in won.items():
        created = linked.get(str(pk))
        if created is None:
            waiting.append((as_of - closed).days)
        elif as_of - WINDOW <= created.date() <= as_of:
            durations.append(max((created.date() - closed).days, 0))
    return {
        "target_days": target,
        "set_up": len(durations),
        "median_days": str(kpi_math.tenths(Decimal(median(durations)))) if durations else None,
        "within_target": sum(1 for d in durations if d <= target),
        "waiting": len(waiting),
        "oldest_waiting_days": max(waiting) if waiting else None,
    }
