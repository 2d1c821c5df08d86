"""Dashboards: the boards (`portal/dashboard_boards.py`), the records behind a figure, CSV exports.

Every filter is a query parameter (legal entity, business unit, months from/to), so a filtered
board is a URL to keep; a value that does not parse is a form error and the board shows
unfiltered figures with the error, never a 500.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any

from django import forms
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from portal.dashboard_boards import BOARD_BY_SLUG, BOARDS, DEFAULT_BOARD, board_panels
from portal.roles import AREA_BY_SLUG
from reconciliation.leakage import CAUSE_BY_SLUG, CAUSES, RecordTable, leakage_records
from reconciliation.records import TIME_KINDS, payment_records, time_records
from reconciliation.rollup import time_rollup_state
from reconciliation.scope import Scope, month_first, month_last
from sync.connectors.stats import redis_client
from sync.models import CostCentre, LegalEntity

AREA = AREA_BY_SLUG["dashboards"]
RECORDS_SHOWN = 500


class ScopeForm(forms.Form):
    legal_entity = forms.ChoiceField(required=False, label="Legal entity")
    business_unit = forms.ChoiceField(required=False, label="Business unit")
    period_from = forms.DateField(
        required=False,
        input_formats=["%Y-%m"],
        label="From month",
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )
    period_to = forms.DateField(
        required=False,
        input_formats=["%Y-%m"],
        label="To month",
        widget=forms.DateInput(attrs={"type": "month"}, format="%Y-%m"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        entities = LegalEntity.objects.order_by("code").values_list("code", "name")
        self.fields["legal_entity"].choices = [("", "Every entity"), *entities]
        units = CostCentre.objects.order_by("code").values_list("code", flat=True).distinct()
        self.fields["business_unit"].choices = [("", "Every unit"), *((u, u) for u in units)]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        start, end = data.get("period_from"), data.get("period_to")
        if start and end and start > end:
            raise forms.ValidationError("The first month is after the last.")
        return data

    def scope(self) -> Scope:
        """The scope the form asks for; an invalid form is no scope at all."""
        if not self.is_valid():
            return Scope()
        data = self.cleaned_data
        return Scope(
            legal_entity=data["legal_entity"],
            business_unit=data["business_unit"],
            period_from=month_first(data["period_from"]) if data["period_from"] else None,
            period_to=month_last(data["period_to"]) if data["period_to"] else None,
        )


def _csv(name: str, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> StreamingHttpResponse:
    class Echo:
        def write(self, value: str) -> str:
            return value

    writer = csv.writer(Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(columns)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


@require_safe
@permission_required(AREA.permission, raise_exception=True)
def dashboards_overview(request: HttpRequest) -> HttpResponse:
    roles = set(request.user.groups.values_list("name", flat=True))
    default = next((DEFAULT_BOARD[r] for r in DEFAULT_BOARD if r in roles), "ops")
    board = BOARD_BY_SLUG.get(request.GET.get("board", ""), BOARD_BY_SLUG[default])
    form = ScopeForm(request.GET or None)
    scope = form.scope()
    rollup = time_rollup_state()
    panels = board_panels(board=board.slug, scope=scope, redis=redis_client())
    export = request.GET.get("export")
    if export:
        panel = next((p for p in panels if p.slug == export), None)
        if panel is None:
            return HttpResponse(f"No table {export!r} on this board.", status=404)
        rows = ([value for value, _link in row] for row in panel.table.rows)
        return _csv(f"{board.slug}-{panel.slug}", panel.table.columns, rows)
    return render(
        request,
        "portal/dashboards/board.html",
        {
            "area": AREA,
            "boards": BOARDS,
            "board": board,
            "form": form,
            "scope": scope,
            "panels": panels,
            "query": request.GET.urlencode(),
            "as_of": timezone.localdate(),
            "rollup": rollup,
        },
    )


def _records(request: HttpRequest, scope: Scope) -> tuple[str, RecordTable] | str:
    """(title, table) of the records a drill-down link asks for, or why it cannot."""
    get = request.GET
    today = timezone.localdate()
    currency = get.get("currency", "")[:3]
    if (cause := get.get("cause")) is not None:
        if cause not in CAUSE_BY_SLUG:
            return f"No leakage cause {cause!r}: one of {', '.join(c.slug for c in CAUSES)}."
        customer = get.get("customer", "")
        if customer and not customer.isdigit():
            return "The customer must be a number."
        table = leakage_records(
            cause=cause,
            as_of=today,
            scope=scope,
            project=get.get("project", "")[:40],
            customer_id=int(customer) if customer else None,
            currency=currency,
        )
        return f"Leakage: {CAUSE_BY_SLUG[cause].label}", table
    if (kind := get.get("time")) is not None:
        if kind not in TIME_KINDS:
            return f"No time figure {kind!r}: one of {', '.join(TIME_KINDS)}."
        month = None
        if get.get("month"):
            try:
                month = dt.date.fromisoformat(f"{get['month']}-01")
            except ValueError:
                return "The month must read YYYY-MM."
        table = time_records(kind=kind, as_of=today, scope=scope, currency=currency, month=month)
        return f"Time: {kind.replace('_', ' ')}", table
    if (month := get.get("payments")) is not None:
        try:
            first = dt.date.fromisoformat(f"{month}-01")
        except ValueError:
            return "The month must read YYYY-MM."
        return f"Cash received in {month}", payment_records(
            month=first, scope=scope, currency=currency
        )
    return "Say which records: cause=, time= or payments=."


@require_safe
@permission_required(AREA.permission, raise_exception=True)
def dashboards_records(request: HttpRequest) -> HttpResponse:
    form = ScopeForm(request.GET)
    if not form.is_valid():
        return HttpResponse(f"Bad scope: {form.errors.as_text()}", status=400)
    found = _records(request, form.scope())
    if isinstance(found, str):
        return HttpResponse(found, status=400, content_type="text/plain")
    title, table = found
    if request.GET.get("format") == "csv":
        return _csv("records", table.columns, table.all_rows())
    rows = table.first(RECORDS_SHOWN + 1)
    return render(
        request,
        "portal/dashboards/records.html",
        {
            "area": AREA,
            "title": title,
            "columns": table.columns,
            "rows": rows[:RECORDS_SHOWN],
            "more": len(rows) > RECORDS_SHOWN,
            "shown": RECORDS_SHOWN,
            "query": request.GET.urlencode(),
            "scope": form.scope(),
        },
    )
