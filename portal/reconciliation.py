"""The Reconciliation area: runs with their scope, totals on both sides and breaks; one run's
breaks, filtered and exported; a run on demand (queued for a worker: a full run reads every
time bill through the ERP's API)."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe
from kombu.exceptions import OperationalError as BrokerUnreachable

from portal.roles import AREA_BY_SLUG
from reconciliation.models import BreakKind, ReconciliationBreak, ReconciliationRun
from reconciliation.pairs.registry import PAIRS
from reconciliation.runs import ReconciliationRefused, period_check
from reconciliation.tasks import reconcile_on_demand

AREA = AREA_BY_SLUG["reconciliation"]
RUNS_SHOWN = 50
BREAKS_SHOWN = 500


def _side_rows(run: ReconciliationRun) -> list[dict[str, Any]]:
    """Per pair: per currency each side's count, hours and amount; the breaks, explained or new."""
    rows = []
    for pair in run.pairs or sorted(run.totals or {}):
        sides = (run.totals or {}).get(pair, {})
        source, target = sides.get("source", {}), sides.get("target", {})
        counts = (run.break_counts or {}).get(pair, {})
        rows.append(
            {
                "pair": pair,
                "currencies": [
                    (currency, source.get(currency, {}), target.get(currency, {}))
                    for currency in sorted(set(source) | set(target))
                ],
                "explained": sum(c.get("explained", 0) for c in counts.values()),
                "unexplained": sum(c.get("unexplained", 0) for c in counts.values()),
            }
        )
    return rows


@require_safe
@permission_required(AREA.permission, raise_exception=True)
def reconciliation_overview(request: HttpRequest) -> HttpResponse:
    runs = list(
        ReconciliationRun.objects.select_related("legal_entity", "project").order_by("-started_at")[
            :RUNS_SHOWN
        ]
    )
    return render(
        request,
        "portal/reconciliation/overview.html",
        {
            "area": AREA,
            "runs": [(run, _side_rows(run)) for run in runs],
            "pairs": sorted(PAIRS),
            "may_act": request.user.has_perm(AREA.act_permission),
        },
    )


@require_POST
def reconciliation_act(request: HttpRequest) -> HttpResponse:
    """Queue a run on demand over a period and pairs (blank: every period, every pair)."""
    if not request.user.has_perm(AREA.permission):
        raise PermissionDenied("Reconciliation is not one of your areas.")
    if not request.user.has_perm(AREA.act_permission):
        raise PermissionDenied("Your role reads the Reconciliation area; it does not act in it.")
    if request.POST.get("action") != "run":
        messages.error(request, f"Unknown action {request.POST.get('action', '')!r}.")
        return redirect(AREA.url_name)
    pair = request.POST.get("pair", "")
    try:
        period = period_check(request.POST.get("period", "").strip())
        if pair and pair not in PAIRS:
            raise ReconciliationRefused(f"no pair {pair!r}; one of {', '.join(sorted(PAIRS))}")
    except ReconciliationRefused as exc:
        messages.error(request, f"Not run: {exc}.")
        return redirect(AREA.url_name)
    try:
        reconcile_on_demand.delay(period=period, pairs=[pair] if pair else None)
    except BrokerUnreachable:
        messages.error(request, "Not run: the broker (Redis) cannot be reached.")
        return redirect(AREA.url_name)
    scope = f"{pair or 'every pair'}, {period or 'every period'}"
    messages.info(request, f"Reconciliation of {scope} queued; it appears below when it ends.")
    return redirect(AREA.url_name)


def _breaks(request: HttpRequest, run: ReconciliationRun):
    breaks = run.breaks.select_related("legal_entity", "project").order_by(
        "pair", "kind", "record_key"
    )
    get = request.GET
    if get.get("pair"):
        breaks = breaks.filter(pair=get["pair"])
    if get.get("kind") in BreakKind.values:
        breaks = breaks.filter(kind=get["kind"])
    if get.get("explained") in ("yes", "no"):
        breaks = breaks.filter(explained=get["explained"] == "yes")
    if get.get("legal_entity"):
        breaks = breaks.filter(legal_entity__code=get["legal_entity"])
    return breaks


def _break_row(b: ReconciliationBreak) -> list[Any]:
    return [
        b.pair,
        b.get_kind_display(),
        b.source_external_id,
        " ".join(b.target_external_ids or []),
        b.period,
        b.legal_entity.code if b.legal_entity else "",
        b.project.code if b.project else "",
        "" if b.amount is None else f"{b.amount:.2f}",
        "" if b.difference is None else f"{b.difference:.2f}",
        b.currency,
        "explained" if b.explained else "new",
        b.explanation,
    ]


BREAK_COLUMNS = (
    "Pair", "Kind", "Source id", "Target ids", "Period", "Legal entity", "Project", "Amount",
    "Difference", "Currency", "State", "Explanation",
)  # fmt: skip


@require_safe
@permission_required(AREA.permission, raise_exception=True)
def reconciliation_run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(ReconciliationRun.objects.select_related("legal_entity"), pk=pk)
    breaks = _breaks(request, run)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="reconciliation-{run.pk}.csv"'
        writer = csv.writer(response)
        writer.writerow(BREAK_COLUMNS)
        for b in breaks.iterator(chunk_size=2000):
            writer.writerow(_break_row(b))
        return response
    shown = list(breaks[: BREAKS_SHOWN + 1])
    return render(
        request,
        "portal/reconciliation/run.html",
        {
            "area": AREA,
            "run": run,
            "sides": _side_rows(run),
            "breaks": shown[:BREAKS_SHOWN],
            "more": len(shown) > BREAKS_SHOWN,
            "shown": BREAKS_SHOWN,
            "kinds": BreakKind.choices,
            "pairs": sorted(run.pairs or PAIRS),
            "query": request.GET.urlencode(),
        },
    )
