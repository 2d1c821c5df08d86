"""The Ownership area: who owns each entity and field today, the handovers to come, the change
requests in review; a page per entity and field (its timeline and history) and per change.

Thin views: reads are `sync.mappings.ownership_selectors`, writes the services in
`sync.mappings.ownership_services` (four eyes, read-only published changes and history live
there; publishing writes the rule with `ownership_rule_set`, as the admin does).

Who: the area's roles read (`portal.area_ownership`: mapping admins and the auditor); every
action (POST) needs `portal.act_ownership` and the change model's add/change permissions
(`EDIT_PERMISSIONS`); publishing also the rule's (`PUBLISH_PERMISSIONS`). The auditor reads
everything, sees no buttons, and every action answers 403.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from portal.ownership_forms import OwnershipChangeForm, WithdrawForm
from portal.roles import AREA_BY_SLUG
from sync.errors import DomainError
from sync.mappings import ownership_services as services
from sync.mappings.models import OwnershipChange, OwnershipRule
from sync.mappings.models.ownership import canonical_name
from sync.mappings.ownership_selectors import (
    ownership_changes_list,
    ownership_in_force,
    ownership_key_changes,
    ownership_timeline,
    ownership_upcoming,
)

AREA = AREA_BY_SLUG["ownership"]
EDIT_PERMISSIONS = (
    AREA.act_permission,
    "mappings.add_ownershipchange",
    "mappings.change_ownershipchange",
)
PUBLISH_PERMISSIONS = (
    *EDIT_PERMISSIONS,
    "mappings.add_ownershiprule",
    "mappings.change_ownershiprule",
)
HISTORY_LIMIT = 100
CANONICAL = re.compile(canonical_name.regex.pattern)


def _opens(request: HttpRequest) -> None:
    if not request.user.has_perm(AREA.permission):
        raise PermissionDenied("The Ownership area is not one of your role's areas.")


def _acts(request: HttpRequest, permissions: tuple[str, ...] = EDIT_PERMISSIONS) -> None:
    _opens(request)
    if not request.user.has_perms(permissions):
        raise PermissionDenied("Your role reads ownership; it does not change it.")


def _who(history_row) -> str:
    user = history_row.history_user
    return user.get_username() if user else history_row.history_actor


# -- reads -------------------------------------------------------------------------------------
def _overview_page(request: HttpRequest, propose_form: OwnershipChangeForm) -> HttpResponse:
    today = timezone.localdate()
    return render(
        request,
        "portal/ownership/overview.html",
        {
            "area": AREA,
            "today": today,
            "entities": ownership_in_force(on=today),
            "upcoming": ownership_upcoming(on=today),
            "pending": ownership_changes_list(pending=True),
            "decided": ownership_changes_list(pending=False, limit=20),
            "may_edit": request.user.has_perms(EDIT_PERMISSIONS),
            "propose_form": propose_form,
        },
    )


@require_safe
def ownership_overview(request: HttpRequest) -> HttpResponse:
    """`/ownership/`: owners in force today by entity, handovers to come, pending changes."""
    _opens(request)
    initial = {"effective_from": timezone.localdate()}
    return _overview_page(request, OwnershipChangeForm(initial=initial))


@require_safe
def ownership_key_detail(request: HttpRequest, entity: str, field: str = "") -> HttpResponse:
    """`/ownership/rules/<entity>/[<field>/]`: one key's rules over time, their history, its
    change requests; a key with no rule yet shows what would own it and offers a proposal."""
    _opens(request)
    if not CANONICAL.match(entity) or (field and not CANONICAL.match(field)):
        raise Http404("Entities and fields are canonical snake-case names.")
    today = timezone.localdate()
    rules = list(ownership_timeline(entity=entity, field=field))
    history = (
        OwnershipRule.history.filter(entity=entity, field=field)
        .select_related("history_user")
        .order_by("-history_id")[:HISTORY_LIMIT]
    )
    verbs = {"+": "created", "~": "changed", "-": "deleted"}
    return render(
        request,
        "portal/ownership/key.html",
        {
            "area": AREA,
            "entity": entity,
            "field": field,
            "today": today,
            "rules": rules,
            "in_force": next((r for r in rules if r.applies_on(today)), None),
            "default_rules": list(ownership_timeline(entity=entity, field="")) if field else [],
            "changes": ownership_key_changes(entity=entity, field=field),
            "history": [
                {"at": h.history_date, "who": _who(h), "what": verbs[h.history_type], "rule": h}
                for h in history
            ],
            "may_edit": request.user.has_perms(EDIT_PERMISSIONS),
            "propose_form": OwnershipChangeForm(
                initial={"entity": entity, "field": field, "effective_from": today}
            ),
        },
    )


def _change_page(request: HttpRequest, change: OwnershipChange) -> HttpResponse:
    history = change.history.select_related("history_user").order_by("-history_id")
    user = request.user
    return render(
        request,
        "portal/ownership/change.html",
        {
            "area": AREA,
            "change": change,
            "history": [
                {"at": h.history_date, "who": _who(h), "status": h.get_status_display()}
                for h in history[:HISTORY_LIMIT]
            ],
            "may_edit": user.has_perms(EDIT_PERMISSIONS),
            "may_publish": user.has_perms(PUBLISH_PERMISSIONS),
            "withdraw_form": WithdrawForm(),
        },
    )


def _change(pk: int) -> OwnershipChange:
    return get_object_or_404(
        OwnershipChange.objects.select_related("created_by", "submitted_by", "decided_by", "rule"),
        pk=pk,
    )


@require_safe
def ownership_change_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """`/ownership/changes/<id>/`: a change request, its history, what its status allows."""
    _opens(request)
    return _change_page(request, _change(pk))


# -- actions -----------------------------------------------------------------------------------
@require_POST
def ownership_change_propose(request: HttpRequest) -> HttpResponse:
    """Open a change request (a draft) from the proposal form; errors re-render the overview."""
    _acts(request)
    form = OwnershipChangeForm(request.POST)
    if not form.is_valid():
        return _overview_page(request, form)
    change = services.ownership_change_create(user=request.user, **form.cleaned_data)
    messages.success(request, f"Change {change.pk} drafted: submit it for review.")
    return redirect("ownership-change", pk=change.pk)


Handler = Callable[[HttpRequest, OwnershipChange], str]


def _submit(request: HttpRequest, change: OwnershipChange) -> str:
    services.ownership_change_submit(change=change, user=request.user)
    return f"Change {change.pk} is submitted: another mapping admin publishes it."


def _publish(request: HttpRequest, change: OwnershipChange) -> str:
    _acts(request, PUBLISH_PERMISSIONS)
    done = services.ownership_change_publish(change=change, user=request.user)
    return f"Change {change.pk} is published: {done.rule}."


def _withdraw(request: HttpRequest, change: OwnershipChange) -> str:
    form = WithdrawForm(request.POST)
    note = form.cleaned_data["note"].strip() if form.is_valid() else ""
    services.ownership_change_withdraw(change=change, user=request.user, note=note)
    return f"Change {change.pk} is withdrawn: no rule changed."


ACTIONS: dict[str, Handler] = {"submit": _submit, "publish": _publish, "withdraw": _withdraw}


@require_POST
def ownership_change_act(request: HttpRequest, pk: int) -> HttpResponse:
    """One action on a change (`ACTIONS`), through its service. A refusal (four eyes, a status
    that does not allow it, an overlapping rule) is shown as a message on the change page."""
    _acts(request)
    change = _change(pk)
    handler = ACTIONS.get(request.POST.get("action", ""))
    if handler is None:
        messages.error(request, f"Unknown action {request.POST.get('action', '')!r}.")
        return redirect("ownership-change", pk=change.pk)
    try:
        messages.success(request, handler(request, change))
    except DomainError as refused:
        messages.error(request, " ".join(getattr(refused, "messages", None) or [str(refused)]))
    return redirect("ownership-change", pk=change.pk)
