"""The dashboards' boards: each a list of panels, a panel a plotly figure over a table of the same
numbers. Every bar carries the URL of the records behind it (`customdata`), every table row a
link, and every table exports as CSV. Figures come from `reconciliation` selectors; money stays
per currency (a chart never adds two currencies on one axis without naming them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import plotly.graph_objects as go
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone
from redis.exceptions import RedisError

from reconciliation import kpis, kpis_billing
from reconciliation.kpi_math import cents
from reconciliation.leakage import CAUSE_BY_SLUG, CAUSES, leakage_rows
from reconciliation.models import BreakKind, KpiSnapshot, ReconciliationRun
from reconciliation.records import cash_by_month
from reconciliation.rollup import time_waiting, unbilled_by_month
from reconciliation.scope import Scope, month_first
from sync.models.transactions import ApprovalStatus
from sync.pipeline.models.exception_items import Queue


@dataclass
class Table:
    columns: tuple[str, ...]
    numeric: frozenset[int] = frozenset()  # columns right-aligned
    rows: list[list[tuple[Any, str]]] = field(default_factory=list)  # (value, link or "")

    def add(self, *cells: Any) -> None:
        self.rows.append([c if isinstance(c, tuple) else (c, "") for c in cells])


@dataclass
class Panel:
    slug: str
    title: str
    table: Table
    figure: dict | None = None
    note: str = ""


@dataclass(frozen=True)
class Board:
    slug: str
    title: str


BOARDS = (
    Board("executive", "Executive"),
    Board("finance", "Finance"),
    Board("pmo", "PMO"),
    Board("ops", "Integration ops"),
)
BOARD_BY_SLUG = {b.slug: b for b in BOARDS}
DEFAULT_BOARD = {"executive": "executive", "finance": "finance", "pmo": "pmo"}
LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 10, "b": 60},
    "height": 320,
    "barmode": "group",
    "yaxis": {"type": "linear", "rangemode": "tozero"},
    "legend": {"orientation": "h"},
    "font": {"family": "system-ui, sans-serif", "size": 12},
}


def records_url(scope: Scope, **params: Any) -> str:
    query = {**scope.as_params(), **{k: v for k, v in params.items() if v not in ("", None)}}
    return f"{reverse('dashboards-records')}?{urlencode(query)}"


def _figure(traces: list[go.Bar | go.Scatter], **layout: Any) -> dict:
    figure = go.Figure(data=traces, layout={**LAYOUT, **layout})
    return figure.to_plotly_json()


def _bar(name: str, x: list[str], y: list[Decimal | str], urls: list[str]) -> go.Bar:
    # Amounts go to the browser as decimal strings (plotly.js reads them as numbers on a
    # linear axis): no float ever holds the money.
    return go.Bar(name=name, x=x, y=[str(v) for v in y], customdata=urls, hovertemplate=None)


def _leakage(scope: Scope, as_of: dt.date) -> list[Panel]:
    rows = leakage_rows(as_of=as_of, scope=scope)
    by_cause: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for row in rows:
        count, amount = by_cause.get((row.cause, row.currency), (0, Decimal(0)))
        by_cause[(row.cause, row.currency)] = (count + row.records, amount + row.amount)
    table = Table(("Cause", "Currency", "Records", "Amount"), frozenset({2, 3}))
    traces = []
    for currency in sorted({c for _, c in by_cause}):
        x, y, urls = [], [], []
        for cause in CAUSES:
            if (cause.slug, currency) not in by_cause:
                continue
            count, amount = by_cause[(cause.slug, currency)]
            url = records_url(scope, cause=cause.slug, currency=currency)
            x.append(cause.label)
            y.append(amount)
            urls.append(url)
            table.add((cause.label, url), currency, count, (f"{amount:,.2f}", url))
        traces.append(_bar(currency, x, y, urls))
    by_entity = Table(
        ("Cause", "Legal entity", "Customer", "Project", "Currency", "Records", "Amount"),
        frozenset({5, 6}),
    )
    for row in rows:
        url = records_url(
            scope.__class__(**{**scope.__dict__, "legal_entity": row.legal_entity}),
            cause=row.cause,
            currency=row.currency,
            project=row.project,
            customer=row.customer_id,
        )
        by_entity.add(
            (CAUSE_BY_SLUG[row.cause].label, url),
            row.legal_entity,
            row.customer,
            row.project,
            row.currency,
            row.records,
            (f"{row.amount:,.2f}", url),
        )
    note = "Nothing leaks in this scope." if not rows else ""
    return [
        Panel(
            "leakage",
            "Revenue leakage by cause",
            table,
            _figure(traces) if traces else None,
            note or "Click a bar for the records behind it. Definitions: docs/kpis.md.",
        ),
        Panel(
            "leakage-by-project",
            "Leakage by legal entity, customer and project",
            by_entity,
            note=note,
        ),
    ]


def _wip(scope: Scope) -> Panel:
    table = Table(("Month worked", "Currency", "Entries", "Value"), frozenset({2, 3}))
    per_currency: dict[str, tuple[list[str], list[Decimal], list[str]]] = {}
    for month, currency, entries, value in unbilled_by_month(scope=scope):
        label = month.strftime("%Y-%m")
        url = records_url(scope, time="wip", currency=currency, month=label)
        x, y, urls = per_currency.setdefault(currency, ([], [], []))
        x.append(label)
        y.append(cents(value))
        urls.append(url)
        table.add(label, currency, (entries, url), (f"{cents(value):,.2f}", url))
    traces = [_bar(c, *per_currency[c]) for c in sorted(per_currency)]
    return Panel(
        "wip",
        "Unbilled time (WIP) by month worked",
        table,
        _figure(traces) if traces else None,
        "Billable time approved or posted, not yet invoiced, at its bill rate."
        if traces
        else "No unbilled time in this scope.",
    )


def _cash(scope: Scope, as_of: dt.date) -> Panel:
    since = scope.period_from or month_first(as_of - dt.timedelta(days=365))
    until = scope.period_to or as_of
    rows = cash_by_month(scope=scope, since=since, until=until)
    table = Table(("Month", "Currency", "Received"), frozenset({2}))
    per_currency: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for month, currency, amount in rows:
        url = records_url(scope, payments=month.strftime("%Y-%m"), currency=currency)
        x, y, urls = per_currency.setdefault(currency, ([], [], []))
        x.append(month.strftime("%Y-%m"))
        y.append(amount)
        urls.append(url)
        table.add(month.strftime("%Y-%m"), currency, (f"{Decimal(amount):,.2f}", url))
    traces = [_bar(c, *per_currency[c]) for c in sorted(per_currency)]
    return Panel(
        "cash",
        "Cash received by month",
        table,
        _figure(traces) if traces else None,
        "" if traces else "No payment received in this period.",
    )


def _dso(as_of: dt.date) -> Panel:
    table = Table(("Currency", "Receivables", "DSO (days)"), frozenset({1, 2}))
    for currency, per in sorted(kpis.kpi_dso(as_of=as_of).items()):
        table.add(currency, f"{Decimal(per['receivables']):,.2f}", per["days"] or "unknown")
    return Panel(
        "dso",
        "DSO (countback)",
        table,
        note="Every legal entity; DSO is not split by business unit."
        if table.rows
        else "No invoice issued yet.",
    )


def _trend(as_of: dt.date, days: int = 90) -> Panel:
    snapshots = list(
        KpiSnapshot.objects.filter(day__gte=as_of - dt.timedelta(days=days), day__lte=as_of)
        .order_by("day")
        .values_list("day", "values")
    )
    series: dict[str, tuple[list[str], list[str]]] = {}
    for day, values in snapshots:
        for currency, per in values.get("unbilled_time", {}).items():
            x, y = series.setdefault(f"WIP {currency}", ([], []))
            x.append(day.isoformat())
            y.append(per["value"])
        for cause, per in values.get("leakage", {}).items():
            for currency, amount in per.items():
                label = (
                    f"{CAUSE_BY_SLUG[cause].label if cause in CAUSE_BY_SLUG else cause} {currency}"
                )
                x, y = series.setdefault(label, ([], []))
                x.append(day.isoformat())
                y.append(amount)
    table = Table(("Series", "Days", "Latest"), frozenset({1, 2}))
    traces = []
    for name, (x, y) in sorted(series.items()):
        traces.append(go.Scatter(name=name, x=x, y=y, mode="lines+markers"))
        table.add(name, len(x), f"{Decimal(y[-1]):,.2f}")
    return Panel(
        "trend",
        f"Trends, last {days} days (daily snapshots, every entity)",
        table,
        _figure(traces) if traces else None,
        "" if traces else "No daily snapshot yet: beat takes one every hour.",
    )


def _time_waiting(scope: Scope, kind: str, title: str) -> Panel:
    status = ApprovalStatus.SUBMITTED if kind == "approval_backlog" else ApprovalStatus.APPROVED
    as_of = timezone.localdate()
    table = Table(
        ("Currency", "Entries", "Hours", "Value", "Oldest (days)"), frozenset({1, 2, 3, 4})
    )
    x, y, urls = [], [], []
    for row in time_waiting(scope=scope, status=status):
        url = records_url(scope, time=kind, currency=row.currency)
        x.append(row.currency)
        y.append(row.entries)
        urls.append(url)
        table.add(
            (row.currency, url),
            (row.entries, url),
            f"{row.hours:,.2f}",
            f"{cents(row.value):,.2f}",
            (as_of - row.oldest).days,
        )
    figure = _figure([_bar("entries", x, y, urls)]) if x else None
    return Panel(kind.replace("_", "-"), title, table, figure, "" if x else "None in this scope.")


def _breaks(scope: Scope) -> Panel:
    """The latest finished reconciliation's breaks by kind and legal entity: new ones counted,
    with their money; each bar opens the run's breaks of that kind and entity."""
    run = (
        ReconciliationRun.objects.exclude(status=ReconciliationRun.Status.RUNNING)
        .order_by("-started_at")
        .first()
    )
    table = Table(
        ("Kind", "Legal entity", "Currency", "New", "Explained", "Amount"), frozenset({3, 4, 5})
    )
    if run is None:
        return Panel(
            "breaks", "Reconciliation breaks", table, note="No reconciliation has run yet."
        )
    breaks = run.breaks.all()
    if scope.legal_entity:
        breaks = breaks.filter(legal_entity__code=scope.legal_entity)
    rows = (
        breaks.values_list("kind", "legal_entity__code", "currency")
        .annotate(
            new=Count("id", filter=Q(explained=False)),
            explained_n=Count("id", filter=Q(explained=True)),
            money=Sum("amount"),
        )
        .order_by("kind", "legal_entity__code", "currency")
    )
    labels = dict(BreakKind.choices)
    per_entity: dict[str, tuple[list[str], list[int], list[str]]] = {}
    base = reverse("reconciliation-run", args=[run.pk])
    for kind, entity, currency, new, explained, money in rows:
        query = {"kind": kind, "legal_entity": entity or "", "explained": "no"}
        url = f"{base}?{urlencode({k: v for k, v in query.items() if v})}"
        x, y, urls = per_entity.setdefault(entity or "no entity", ([], [], []))
        x.append(labels.get(kind, kind))
        y.append(new)
        urls.append(url)
        table.add(
            (labels.get(kind, kind), url),
            entity or "—",
            currency or "—",
            (new, url),
            explained,
            f"{cents(money):,.2f}" if money is not None else "—",
        )
    traces = [_bar(e, *per_entity[e]) for e in sorted(per_entity)]
    return Panel(
        "breaks",
        f"Reconciliation breaks, run {run.pk} ({run.started_at:%Y-%m-%d %H:%M})",
        table,
        _figure(traces, barmode="stack") if traces else None,
        "New breaks per kind and legal entity; explained ones are in the table."
        if traces
        else "The systems agree: no break in this scope.",
    )


def _lag(as_of: dt.date) -> Panel:
    table = Table(
        ("Currency", "Median (days)", "p90 (days)", "Invoiced (90 days)", "Waiting"),
        frozenset({1, 2, 3, 4}),
    )
    for currency, per in kpis_billing.kpi_approved_to_invoiced_lag(as_of=as_of).items():
        waiting = records_url(Scope(), time="wip", currency=currency)
        table.add(
            currency,
            per["median_days"] or "—",
            per["p90_days"] or "—",
            f"{Decimal(per['invoiced_amount']):,.2f}",
            (f"{Decimal(per['waiting_amount']):,.2f}", waiting),
        )
    cycle = kpis_billing.kpi_invoice_cycle_time(as_of=as_of)
    note = "; ".join(f"{k}: {v['median_days']} days over {v['invoices']}" for k, v in cycle.items())
    return Panel(
        "lag",
        "Approved-to-invoiced lag (weighted by amount; every entity)",
        table,
        note=f"Invoice cycle time, median from the trigger: {note}."
        if note
        else "No invoice issued in the last 90 days.",
    )


def _setup_sla(as_of: dt.date) -> Panel:
    sla = kpis_billing.kpi_project_setup_sla(as_of=as_of)
    table = Table(
        (
            "Target (days)",
            "Set up (90 days)",
            "Median (days)",
            "Within target",
            "Waiting",
            "Oldest waiting (days)",
        ),
        frozenset({0, 1, 2, 3, 4, 5}),
    )
    table.add(
        sla["target_days"],
        sla["set_up"],
        sla["median_days"] or "—",
        sla["within_target"],
        sla["waiting"],
        sla["oldest_waiting_days"] if sla["oldest_waiting_days"] is not None else "—",
    )
    return Panel(
        "setup-sla",
        "Project set-up SLA: won deal to ERP job (every entity)",
        table,
        note="Projects whose customer the ERP has not accepted wait: they count as waiting.",
    )


def _queues(now: dt.datetime) -> list[Panel]:
    backlog = kpis.kpi_queue_backlog(now=now)
    mttr = kpis.kpi_mttr(now=now)
    labels = dict(Queue.choices)
    table = Table(
        ("Queue", "Open", "Past SLA", "Oldest (days)", "Money at risk", "MTTR (hours, 30 days)"),
        frozenset({1, 2, 3, 5}),
    )
    x, y, urls = [], [], []
    for queue, per in sorted(backlog.items()):
        url = f"{reverse('area-exceptions')}?{urlencode({'queue': queue})}"
        x.append(labels.get(queue, queue))
        y.append(per["open"])
        urls.append(url)
        money = ", ".join(f"{a} {c}" for c, a in sorted(per["money_at_risk"].items()))
        table.add(
            (labels.get(queue, queue), url),
            (per["open"], url),
            per["past_sla"],
            per["oldest_days"],
            money or "—",
            mttr.get(queue, {}).get("mean_hours", "—"),
        )
    return [
        Panel(
            "queues",
            "Exception queues: depth and repair time",
            table,
            _figure([_bar("open items", x, y, urls)]) if x else None,
            "" if x else "No open exception item.",
        )
    ]


def _api(redis: Any, now: dt.datetime) -> list[Panel]:
    unavailable = ""
    try:
        health = kpis.kpi_api_health(redis=redis) if redis is not None else {}
    except RedisError as exc:  # the figures live in Redis; the rest of the board does not
        health, unavailable = {}, f"Request counts unavailable: {exc}. "
    retries = kpis.kpi_retries_per_delivered(now=now)
    table = Table(
        (
            "Connection",
            "Requests",
            "Success rate",
            "Business failures",
            "Technical failures",
            "p95 (s)",
        ),
        frozenset({1, 2, 3, 4, 5}),
    )
    runs = reverse("area-runs")
    x, y, urls = [], [], []
    for connection, per in health.items():
        rate = per["success_rate"]
        x.append(connection)
        y.append(Decimal(rate) * 100 if rate is not None else Decimal(0))
        urls.append(runs)
        p95 = per["p95_seconds"] or "—"
        table.add(
            (connection, runs),
            per["requests"],
            f"{Decimal(rate) * 100:.1f} %" if rate is not None else "—",
            per["business_failures"],
            per["technical_failures"],
            f"> {p95}" if per["p95_beyond_last_bucket"] else p95,
        )
    note = unavailable + (
        f"Deliveries in the last 30 days: {retries['delivered']}, "
        f"attempts per delivered record: {retries['attempts_per_record'] or '—'}."
    )
    return [
        Panel(
            "api",
            "Vendor APIs: success rate and p95 latency",
            table,
            _figure([_bar("success %", x, y, urls)], yaxis={"type": "linear", "range": [0, 100]})
            if x
            else None,
            note,
        )
    ]


def board_panels(
    *, board: str, scope: Scope, as_of: dt.date | None = None, redis: Any = None
) -> list[Panel]:
    """The panels of `board` for `scope` on `as_of` (default today)."""
    now = timezone.now()
    as_of = as_of or timezone.localdate(now)
    if board == "executive":
        return [
            *_leakage(scope, as_of)[:1],
            _wip(scope),
            _cash(scope, as_of),
            _lag(as_of),
            _dso(as_of),
            _trend(as_of),
        ]
    if board == "finance":
        return [*_leakage(scope, as_of), _breaks(scope), _wip(scope), *_queues(now)]
    if board == "pmo":
        return [
            _time_waiting(scope, "approval_backlog", "Approval backlog"),
            _time_waiting(scope, "unposted", "Approved time not yet posted"),
            _setup_sla(as_of),
        ]
    if board == "ops":
        return [*_queues(now), *_api(redis, now)]
    raise ValueError(f"no board {board!r}")
