"""The Exceptions area: queue cards and the item list, root-cause groups, one item, and the
actions people take on them. Thin views: the reads are `sync.pipeline.exception_queries`, the
writes the same services the commands and tasks call (`exception_items`, `replay`).

Who sees what: the area needs `portal.area_exceptions`; each role sees its own queues
(`portal.roles.QUEUES_BY_ROLE`), and a user assigned to legal entities only their items and
those of no known entity (`portal.exception_scope`); any other item does not exist for them
(404), in pages, actions and jobs alike. The queue cards and the groups are as of the exception
summary's last refresh (the page says when); every action asks for a refresh.
Every action (POST) needs `portal.act_exceptions` and `pipeline.change_exceptionitem`: the
auditor reads everything and acts on nothing. Payloads are shown through `sync.redaction`.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from portal.exception_jobs import INLINE_LIMIT, exception_group_job_start
from portal.exception_scope import exception_scope_for
from portal.models import ExceptionGroupJob
from portal.roles import AREA_BY_SLUG
from sync.errors import DomainError
from sync.mappings.selectors import mapping_versions_latest
from sync.pipeline import exception_items as actions
from sync.pipeline import trace
from sync.pipeline.exception_filters import ExceptionItemFilter
from sync.pipeline.exception_queries import (
    ExceptionScope,
    exception_groups,
    exception_items_page,
    exception_queue_cards,
)
from sync.pipeline.exception_summary import (
    exception_summary_computed_at,
    exception_summary_refresh_soon,
)
from sync.pipeline.models import ExceptionItem
from sync.pipeline.replay import exception_item_replay_preview, exception_items_replay
from sync.pipeline.trace import trace_for
from sync.redaction import cost_rates_visible_to, value_redact

AREA = AREA_BY_SLUG["exceptions"]
ACT_PERMISSIONS = (AREA.act_permission, "pipeline.change_exceptionitem")
TIMELINE_LIMIT = 50


def _scope(request: HttpRequest) -> ExceptionScope:
    if not request.user.has_perm(AREA.permission):
        raise PermissionDenied("The Exceptions area is not one of your role's areas.")
    return exception_scope_for(request.user)


def _may_act(request: HttpRequest) -> bool:
    return request.user.has_perms(ACT_PERMISSIONS)


def _item(pk: int, scope: ExceptionScope) -> ExceptionItem:
    item = scope.items().filter(pk=pk).select_related("assignee", "inbox_item", "delivery").first()
    if item is None:
        raise Http404("No such exception item in your queues.")
    return item


@require_safe
def exceptions_overview(request: HttpRequest) -> HttpResponse:
    """`/exceptions/`: a card per queue, then the filtered list, most money at risk first."""
    scope = _scope(request)
    found = ExceptionItemFilter(request.GET or None, queryset=scope.items(), user=request.user)
    page = exception_items_page(items=found.qs, cursor=request.GET.get("after"))
    next_query = None
    if page.next_cursor:
        query = request.GET.copy()
        query["after"] = page.next_cursor
        next_query = query.urlencode()
    return render(
        request,
        "portal/exceptions/overview.html",
        {
            "area": AREA,
            "cards": exception_queue_cards(scope=scope),
            "as_of": exception_summary_computed_at(),
            "filter": found,
            "page": page,
            "next_query": next_query,
            "paged": "after" in request.GET,
            "may_act": _may_act(request),
        },
    )


@require_safe
def exceptions_groups(request: HttpRequest) -> HttpResponse:
    """`/exceptions/groups/`: open items by root cause, the unit people fix and replay."""
    groups = exception_groups(scope=_scope(request))
    fixes = group_fixes(groups, user=request.user)
    # One reverse() for the page, not three {% url %} a row: with 200 rows they cost ~40 % of
    # the request (profiled in the test client: 199 → 119 ms).
    placeholder = "0" * 16
    act = reverse("exceptions-group-act", args=[placeholder])
    return render(
        request,
        "portal/exceptions/groups.html",
        {
            "area": AREA,
            "groups": groups,
            "list_url": reverse(AREA.url_name),
            "rows": [
                (g, fixes.get(g.root_cause), act.replace(placeholder, g.root_cause)) for g in groups
            ],
            "as_of": exception_summary_computed_at(),
            "may_act": _may_act(request),
        },
    )


# The mapping set whose next version clears a group, by the group's code (its cause names the
# value to map).
FIX_MAPPING_SETS = {
    "LEGAL_ENTITY_UNMAPPED": "legal-entity",
    "CURRENCY_UNMAPPED": "currency",
    "SERVICE_ITEM_UNMAPPED": "service-item",
}


def group_fixes(groups: list[Any], *, user: Any) -> dict[str, dict[str, str | None]]:
    """{root cause: {"label": what to change, "url": where, or None for a user who may not
    open that area}} for the groups a mapping or an ownership change clears. One query."""
    latest = mapping_versions_latest(
        slugs={FIX_MAPPING_SETS[g.code] for g in groups if g.code in FIX_MAPPING_SETS}
    )
    may_map = user.has_perm(AREA_BY_SLUG["mappings"].permission)
    may_own = user.has_perm(AREA_BY_SLUG["ownership"].permission)
    fixes: dict[str, dict[str, str | None]] = {}
    for group in groups:
        slug = FIX_MAPPING_SETS.get(group.code)
        if slug and group.cause:
            version = latest.get(slug)
            url = (
                reverse("mappings-version", args=[version])
                if version
                else reverse(AREA_BY_SLUG["mappings"].url_name)
            )
            fixes[group.root_cause] = {
                "label": f"map {group.cause} in the {slug} mapping",
                "url": url if may_map else None,
            }
        elif group.code == "FIELD_OWNED_ELSEWHERE" and group.cause.count(".") == 1:
            entity, field_name = group.cause.split(".")
            fixes[group.root_cause] = {
                "label": f"review who owns {entity} {field_name}",
                "url": reverse("ownership-field", args=[entity, field_name]) if may_own else None,
            }
    return fixes


def payload_fields(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """A JSON payload as (dotted path, value) rows, in document order."""
    if isinstance(value, dict):
        rows: list[tuple[str, Any]] = []
        for key, item in value.items():
            rows += payload_fields(item, f"{prefix}.{key}" if prefix else str(key))
        return rows or [(prefix, "{}")]
    if isinstance(value, list):
        rows = []
        for index, item in enumerate(value):
            rows += payload_fields(item, f"{prefix}[{index}]")
        return rows or [(prefix, "[]")]
    return [(prefix, value)]


def _timeline(item: ExceptionItem, scope: ExceptionScope) -> list[dict[str, Any]]:
    """The item's trace (`trace_for`: everything sharing its correlation id), as table rows."""
    if not item.correlation_id:
        return []
    rows = []
    found = trace_for(
        correlation_id=item.correlation_id,
        queues=scope.queues,
        legal_entities=scope.legal_entities,
    )
    for event in found.events:
        row, pk = event.row, None
        if event.kind == trace.INBOX:
            what, state = f"Received {row.system} {row.entity} {row.external_id}", row.status
        elif event.kind == trace.RECORD:
            what, state = f"{row.model_name} {row.pk}", row.status
        elif event.kind == trace.DELIVERY:
            what, state = f"Delivery {row.operation} {row.external_id}", row.state
        else:
            what, state, pk = f"Exception {row.code} ({row.queue_label})", row.status, row.pk
        rows.append({"at": event.at, "what": what, "state": state, "pk": pk})
    return rows[:TIMELINE_LIMIT]


@require_safe
def exception_item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """`/exceptions/<id>/`: the item, its payload as fields, its trace, history and comments."""
    scope = _scope(request)
    item = _item(pk, scope)
    visible = cost_rates_visible_to(request.user)
    payload = value_redact(item.payload, cost_rates_visible=visible)
    detail = value_redact(item.detail, cost_rates_visible=visible)
    return render(
        request,
        "portal/exceptions/item.html",
        {
            "area": AREA,
            "item": item,
            "payload_rows": payload_fields(payload),
            "payload_json": json.dumps(payload, indent=2, default=str),
            "detail_rows": payload_fields(detail) if detail else [],
            "timeline": _timeline(item, scope),
            "history": item.history.select_related("history_user").order_by("-history_id")[:50],
            "comments": item.comments.select_related("author").order_by("pk"),
            "may_act": _may_act(request),
            "preview": exception_item_replay_preview(item=item) if item.is_open else None,
        },
    )


def _act_check(request: HttpRequest) -> ExceptionScope:
    scope = _scope(request)
    if not _may_act(request):
        raise PermissionDenied("Your role reads the exception queues; it does not act on them.")
    return scope


def _done(request: HttpRequest, text: str) -> None:
    messages.success(request, text)
    # The cards and groups count what changed once a worker refreshes the summary.
    exception_summary_refresh_soon()


@require_POST
def exception_item_act(request: HttpRequest, pk: int) -> HttpResponse:
    """One action on one item: assign to me, comment, replay, resolve, ignore."""
    item = _item(pk, _act_check(request))
    action = request.POST.get("action", "")
    user = request.user
    try:
        if action == "assign_me":
            actions.exception_item_assign(item=item, assignee=user, user=user)
            _done(request, f"Item {item.pk} is yours.")
        elif action == "comment":
            actions.exception_item_comment(item=item, body=request.POST.get("body", ""), user=user)
            _done(request, "Comment added.")
        elif action == "replay":
            result = exception_items_replay(items=[item], user=user)
            _done(request, f"Replayed: {result.resolved} resolved, {result.still_open} still open.")
        elif action in ("resolve", "ignore"):
            close = (
                actions.exception_item_resolve
                if action == "resolve"
                else (actions.exception_item_ignore)
            )
            close(item=item, reason=request.POST.get("reason", ""), user=user)
            _done(request, f"Item {item.pk} {action}d.")
        else:
            messages.error(request, f"Unknown action {action!r}.")
    except DomainError as refused:
        messages.error(request, str(refused))
    return redirect("exceptions-item", pk=item.pk)


@require_POST
def exception_group_act(request: HttpRequest, root_cause: str) -> HttpResponse:
    """One action on every open item of a root-cause group: replay, resolve or ignore.

    Up to INLINE_LIMIT items are acted on now; a larger group becomes a job a worker runs,
    and the page shows its progress (`exceptions-job`)."""
    scope = _act_check(request)
    group = scope.items().filter(root_cause=root_cause, status__in=ExceptionItem.OPEN_STATUSES)
    action = request.POST.get("action", "")
    reason = request.POST.get("reason", "")
    back = redirect(reverse("exceptions-groups"))
    try:
        if group.count() > INLINE_LIMIT:
            job = exception_group_job_start(
                root_cause=root_cause,
                action=action,
                reason=reason,
                scope=scope,
                user=request.user,
            )
            return redirect("exceptions-job", pk=job.pk)
        items = list(group.order_by("pk"))
        if not items:
            messages.error(request, "That group has no open items in your queues.")
        elif action == "replay":
            result = exception_items_replay(items=items, user=request.user)
            _done(
                request,
                f"Replayed {result.items}: {result.resolved} resolved, "
                f"{result.still_open} still open.",
            )
        elif action in ("resolve", "ignore"):
            status = "resolved" if action == "resolve" else "ignored"
            closed = actions.exception_items_close(
                items=items, status=status, reason=reason, user=request.user
            )
            _done(request, f"{closed} items {status}.")
        else:
            messages.error(request, f"Unknown action {action!r}.")
    except DomainError as refused:
        messages.error(request, str(refused))
    return back


@require_safe
def exception_job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """`/exceptions/jobs/<id>/`: a group action's progress; htmx polls the fragment while the
    job is active, and a reload shows where it stands."""
    _scope(request)
    job = ExceptionGroupJob.objects.filter(pk=pk).select_related("requested_by").first()
    if job is None:
        raise Http404("No such job.")
    fragment = request.headers.get("HX-Request") == "true"
    template = "portal/exceptions/_job.html" if fragment else "portal/exceptions/job.html"
    return render(request, template, {"area": AREA, "job": job})
