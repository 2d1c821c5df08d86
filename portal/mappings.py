"""The Mappings area: sets and their versions, a version's entries (edited while a draft),
review and publishing, rollback, CSV export and import, and the diff of two versions.

Thin views: reads are `sync.mappings.selectors`, writes the services in
`sync.mappings.services` that the admin and the commands call too (four eyes, immutability
and history live there, not here).

The dry run of a draft or in-review version is a read (GET): it changes nothing, so the
auditor may run it too.

A published version's page offers to replay the open exception groups its rows clear
(`sync.pipeline.mapping_clears`): each group's button posts to the Exceptions area's own group
action (`exceptions-group-act`), so there is one replay path; it is shown only to a user who
may act on that group's queue, and everyone else reads who to ask.

Who: the area's roles read (`portal.area_mappings`: mapping admins and the auditor); every
action (POST) needs `portal.act_mappings` and the model permission it writes with
(`EDIT_PERMISSIONS`; publishing, rollback and retiring also `mappings.publish_mappingversion`).
The auditor reads everything and every action answers 403.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from itertools import chain

from django.contrib import messages
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from portal.exception_scope import exception_scope_for
from portal.exceptions import ACT_PERMISSIONS as EXCEPTION_ACT_PERMISSIONS
from portal.exceptions import FIX_MAPPING_SETS
from portal.mapping_forms import (
    CsvImportForm,
    DryRunForm,
    EffectiveDateForm,
    EntryForm,
    VersionForm,
)
from portal.roles import AREA_BY_SLUG, QUEUES_BY_ROLE, queues_for
from sync.errors import DomainError
from sync.mappings import services
from sync.mappings.csv_io import entries_csv_render
from sync.mappings.errors import MappingInvalid
from sync.mappings.models import MappingEntry, MappingSet, MappingVersion
from sync.mappings.selectors import (
    mapping_reference_list,
    mapping_sets_overview,
    mapping_versions_diff,
    mapping_versions_effective,
)
from sync.pipeline.dry_run import mapping_version_dry_run
from sync.pipeline.mapping_clears import ReplayOffer, mapping_version_replay_offer

AREA = AREA_BY_SLUG["mappings"]
EDIT_PERMISSIONS = (
    AREA.act_permission,
    "mappings.add_mappingversion",
    "mappings.change_mappingversion",
    "mappings.change_mappingentry",
)
PUBLISH_PERMISSIONS = (*EDIT_PERMISSIONS, "mappings.publish_mappingversion")
HISTORY_LIMIT = 100
DATALIST_LIMIT = 1000  # reference values offered as you type; checking uses them all
DRY_RUN_SHOWN = 200  # changed records listed on the page; the rest are counted
DRY_RUN_STATUSES = (MappingVersion.Status.DRAFT, MappingVersion.Status.IN_REVIEW)
Status = MappingVersion.Status


def _opens(request: HttpRequest) -> None:
    if not request.user.has_perm(AREA.permission):
        raise PermissionDenied("The Mappings area is not one of your role's areas.")


def _acts(request: HttpRequest, permissions: tuple[str, ...] = EDIT_PERMISSIONS) -> None:
    _opens(request)
    if not request.user.has_perms(permissions):
        raise PermissionDenied("Your role reads the mappings; it does not change them.")


def _version(pk: int) -> MappingVersion:
    return get_object_or_404(
        MappingVersion.objects.select_related(
            "mapping_set", "based_on", "created_by", "submitted_by", "published_by", "retired_by"
        ),
        pk=pk,
    )


# -- reads -------------------------------------------------------------------------------------
@require_safe
def mappings_overview(request: HttpRequest) -> HttpResponse:
    """`/mappings/`: every set with its versions: status, effective date, author, reviewer."""
    _opens(request)
    in_force = mapping_versions_effective(on=timezone.localdate())
    return render(
        request,
        "portal/mappings/overview.html",
        {
            "area": AREA,
            "sets": mapping_sets_overview(),
            "in_force_ids": {version.pk for version in in_force.values()},
            "may_edit": request.user.has_perms(EDIT_PERMISSIONS),
        },
    )


def _history(version: MappingVersion) -> list[dict[str, object]]:
    """The version's and its entries' history rows, newest first: who did what, when."""
    heads = version.history.select_related("history_user").order_by("-history_id")
    entries = MappingEntry.history.filter(version_id=version.pk).select_related("history_user")
    rows = []
    for h in chain(heads[:HISTORY_LIMIT], entries.order_by("-history_id")[:HISTORY_LIMIT]):
        if isinstance(h, MappingVersion.history.model):
            what = f"version: {h.get_status_display().lower()}"
            if h.effective_from:
                what += f", effective from {h.effective_from:%Y-%m-%d}"
        else:
            verb = {"+": "added", "~": "changed", "-": "removed"}[h.history_type]
            what = f"entry {verb}: {h.source_value} → {h.target_value}"
        who = h.history_user.get_username() if h.history_user else h.history_actor
        rows.append({"at": h.history_date, "who": who, "what": what})
    rows.sort(key=lambda row: row["at"], reverse=True)
    return rows[:HISTORY_LIMIT]


def _replay_offer(version: MappingVersion, user: AbstractBaseUser) -> ReplayOffer | None:
    """What the published `version` clears among the items of the legal entities `user` is
    assigned to, if any (None for a version of another status)."""
    if version.status != Status.PUBLISHED:
        return None
    slug = version.mapping_set.slug
    codes = {code for code, fixed_by in FIX_MAPPING_SETS.items() if fixed_by == slug}
    entities = exception_scope_for(user).legal_entities
    return mapping_version_replay_offer(version=version, codes=codes, legal_entities=entities)


def _queue_owners(queue: str) -> str:
    """Who replays a queue's groups, in words: the roles that act in the Exceptions area and
    work `queue` ("finance or integration ops")."""
    operators = AREA_BY_SLUG["exceptions"].operators
    names = [r.replace("_", " ") for r in operators if queue in QUEUES_BY_ROLE.get(r, ())]
    return " or ".join(names) or "an administrator"


def _offer_rows(request: HttpRequest, offer: ReplayOffer | None) -> list[dict[str, object]]:
    """The offer's groups with, for each, whether this user may replay it from here."""
    if offer is None:
        return []
    user = request.user
    acting = user.has_perm(AREA_BY_SLUG["exceptions"].permission) and user.has_perms(
        EXCEPTION_ACT_PERMISSIONS
    )
    queues = set(queues_for(user)) if acting else set()
    return [
        {"group": g, "may_replay": g.queue in queues, "owners": _queue_owners(g.queue)}
        for g in offer.groups
    ]


def _version_page(request: HttpRequest, version: MappingVersion, **forms: object) -> HttpResponse:
    """The version page, with `forms` (bound ones carrying errors) over the fresh ones."""
    reference = mapping_reference_list(mapping_set=version.mapping_set)
    user = request.user
    may_edit = user.has_perms(EDIT_PERMISSIONS)
    failed_source, failed_form = forms.pop("row_error", (None, None))
    rows = []
    for entry in version.entries.order_by("source_value"):
        row = {
            "source": entry.source_value,
            "target": entry.target_value,
            "attributes": json.dumps(entry.attributes, sort_keys=True) if entry.attributes else "",
            "form": None,
        }
        if entry.source_value == failed_source:  # show what was typed, beside its error
            row.update(
                target=failed_form["target_value"].value() or "",
                attributes=failed_form["attributes"].value() or "",
                form=failed_form,
            )
        rows.append(row)
    context = {
        "area": AREA,
        "version": version,
        "mapping_set": version.mapping_set,
        "rows": rows,
        "editing": may_edit and version.is_editable,
        "reference": reference,
        "reference_values": sorted(reference.values)[:DATALIST_LIMIT] if reference else [],
        "siblings": list(version.mapping_set.versions.order_by("-number")),
        "history": _history(version),
        "may_edit": may_edit,
        "may_publish": user.has_perms(PUBLISH_PERMISSIONS),
        "add_form": EntryForm(reference=reference),
        "version_form": VersionForm(
            initial={"effective_from": version.effective_from, "notes": version.notes}
        ),
        "publish_form": EffectiveDateForm(initial={"effective_from": version.effective_from}),
        "rollback_form": EffectiveDateForm(initial={"effective_from": timezone.localdate()}),
        "import_form": CsvImportForm(),
        "import_errors": [],
        "dry_run_form": DryRunForm(),
        "dry_run": None,
    }
    offer = _replay_offer(version, request.user)
    context.update(replay_offer=offer, replay_rows=_offer_rows(request, offer))
    context.update(forms)
    return render(request, "portal/mappings/version.html", context)


@require_safe
def mapping_version_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """`/mappings/versions/<id>/`: the entries, and what the version's status allows."""
    _opens(request)
    return _version_page(request, _version(pk))


@require_safe
def mapping_version_dry_run_page(request: HttpRequest, pk: int) -> HttpResponse:
    """`/mappings/versions/<id>/dry-run/?limit=N`: the version page with what publishing this
    draft (or in-review version) would change for the last N inbox payloads. A read."""
    _opens(request)
    version = _version(pk)
    form = DryRunForm(request.GET)
    if version.status not in DRY_RUN_STATUSES or not form.is_valid():
        return _version_page(request, version, dry_run_form=form)
    result = mapping_version_dry_run(version=version, limit=form.cleaned_data["limit"])
    return _version_page(
        request,
        version,
        dry_run_form=form,
        dry_run=result,
        dry_run_changes=result.changes[:DRY_RUN_SHOWN],
        dry_run_hidden=max(0, len(result.changes) - DRY_RUN_SHOWN),
    )


@require_safe
def mapping_version_export(request: HttpRequest, pk: int) -> HttpResponse:
    """`/mappings/versions/<id>/export.csv`: the entries as the CSV the import reads."""
    _opens(request)
    version = _version(pk)
    rows = version.entries.order_by("source_value").values_list(
        "source_value", "target_value", "attributes"
    )
    response = HttpResponse(entries_csv_render(rows), content_type="text/csv; charset=utf-8")
    name = f"{version.mapping_set.slug}-v{version.number}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_safe
def mapping_set_diff(request: HttpRequest, slug: str) -> HttpResponse:
    """`/mappings/sets/<slug>/diff/?old=<n>&new=<n>`: rows added, removed and changed.

    Without numbers: the newest version against the one it was based on (else the one before).
    """
    _opens(request)
    mapping_set = get_object_or_404(MappingSet, slug=slug)
    versions = {v.number: v for v in mapping_set.versions.select_related("based_on")}
    new = _numbered(versions, request.GET.get("new")) or (
        versions[max(versions)] if versions else None
    )
    default_old = None
    if new is not None:
        default_old = new.based_on or versions.get(new.number - 1)
    old = _numbered(versions, request.GET.get("old")) or default_old
    return render(
        request,
        "portal/mappings/diff.html",
        {
            "area": AREA,
            "mapping_set": mapping_set,
            "versions": sorted(versions.values(), key=lambda v: -v.number),
            "old": old,
            "new": new,
            "diff": mapping_versions_diff(old=old, new=new) if old and new else None,
        },
    )


def _numbered(versions: dict[int, MappingVersion], number: str | None) -> MappingVersion | None:
    if not number:
        return None
    if not number.isdigit() or int(number) not in versions:
        raise Http404("No such version of this set.")
    return versions[int(number)]


# -- actions -----------------------------------------------------------------------------------
@require_POST
def mapping_set_act(request: HttpRequest, slug: str) -> HttpResponse:
    """An action on a set: `new_draft` opens an empty draft."""
    _acts(request)
    mapping_set = get_object_or_404(MappingSet, slug=slug)
    if request.POST.get("action") != "new_draft":
        messages.error(request, f"Unknown action {request.POST.get('action', '')!r}.")
        return redirect(AREA.url_name)
    draft = services.mapping_version_create_draft(mapping_set=mapping_set, user=request.user)
    messages.success(request, f"Draft v{draft.number} of {mapping_set.name} opened, empty.")
    return redirect("mappings-version", pk=draft.pk)


Handler = Callable[[HttpRequest, MappingVersion], HttpResponse]


def _entry_set(request: HttpRequest, version: MappingVersion) -> HttpResponse:
    reference = mapping_reference_list(mapping_set=version.mapping_set)
    form = EntryForm(request.POST, reference=reference)
    if not form.is_valid():
        source = request.POST.get("source_value", "")
        if request.POST.get("row") and version.entries.filter(source_value=source).exists():
            return _version_page(request, version, row_error=(source, form))
        return _version_page(request, version, add_form=form)
    data = form.cleaned_data
    entry = services.mapping_entry_set(
        version=version,
        source_value=data["source_value"],
        target_value=data["target_value"],
        attributes=data["attributes"],
        user=request.user,
    )
    messages.success(request, f"{entry.source_value} → {entry.target_value} saved.")
    return redirect("mappings-version", pk=version.pk)


def _entry_delete(request: HttpRequest, version: MappingVersion) -> HttpResponse:
    source = request.POST.get("source_value", "")
    if services.mapping_entry_delete(version=version, source_value=source, user=request.user):
        messages.success(request, f"{source} removed.")
    else:
        messages.error(request, f"{source!r} is not in this version.")
    return redirect("mappings-version", pk=version.pk)


def _import(request: HttpRequest, version: MappingVersion) -> HttpResponse:
    form = CsvImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _version_page(request, version, import_form=form)
    try:
        done = services.mapping_version_import_csv(
            version=version,
            text=form.cleaned_data["text"],
            replace=form.cleaned_data["replace"],
            user=request.user,
        )
    except MappingInvalid as refused:
        return _version_page(request, version, import_form=form, import_errors=refused.messages)
    messages.success(
        request,
        f"Imported: {done.added} added, {done.changed} changed, {done.removed} removed, "
        f"{done.unchanged} unchanged.",
    )
    return redirect("mappings-version", pk=version.pk)


def _update(request: HttpRequest, version: MappingVersion) -> HttpResponse:
    form = VersionForm(request.POST)
    if not form.is_valid():
        return _version_page(request, version, version_form=form)
    services.mapping_version_update(version=version, user=request.user, **form.cleaned_data)
    messages.success(request, "Planned date and notes saved.")
    return redirect("mappings-version", pk=version.pk)


def _submit(request: HttpRequest, version: MappingVersion) -> HttpResponse:
    services.mapping_version_submit(version=version, user=request.user)
    messages.success(
        request, f"v{version.number} is in review: another mapping admin publishes it."
    )
    return redirect("mappings-version", pk=version.pk)


def _send_back(request: HttpRequest, version: MappingVersion) -> HttpResponse:
    reason = request.POST.get("reason", "").strip()
    services.mapping_version_send_back(version=version, reason=reason, user=request.user)
    messages.success(request, f"v{version.number} is a draft again.")
    return redirect("mappings-version", pk=version.pk)


def _publish(request: HttpRequest, version: MappingVersion) -> HttpResponse:
    _acts(request, PUBLISH_PERMISSIONS)
    form = EffectiveDateForm(request.POST)
    if not form.is_valid():
        return _version_page(request, version, publish_form=form)
    day = form.cleaned_data["effective_from"]
    services.mapping_version_publish(version=version, effective_from=day, user=request.user)
    version.refresh_from_db()
    text = f"v{version.number} is published, effective from {day:%Y-%m-%d}."
    offer = _replay_offer(version, request.user)
    if offer and offer.groups:
        groups = len(offer.groups)
        text += (
            f" It clears {offer.items} open exception item{'s' if offer.items != 1 else ''} in "
            f"{groups} group{'s' if groups != 1 else ''}: replay {'them' if groups > 1 else 'it'}"
            " below."
        )
    messages.success(request, text)
    return redirect(reverse("mappings-version", args=[version.pk]) + "#replay-offer")


def _rollback(request: HttpRequest, version: MappingVersion) -> HttpResponse:
    _acts(request, PUBLISH_PERMISSIONS)
    form = EffectiveDateForm(request.POST)
    if not form.is_valid():
        return _version_page(request, version, rollback_form=form)
    copy = services.mapping_version_rollback(
        mapping_set=version.mapping_set,
        to_version=version,
        effective_from=form.cleaned_data["effective_from"],
        user=request.user,
    )
    messages.success(
        request,
        f"v{copy.number} rolls back to v{version.number}; it is in review: another mapping "
        "admin publishes it.",
    )
    return redirect("mappings-version", pk=copy.pk)


def _new_draft(request: HttpRequest, version: MappingVersion) -> HttpResponse:
    draft = services.mapping_version_create_draft(
        mapping_set=version.mapping_set, based_on=version, user=request.user
    )
    messages.success(request, f"Draft v{draft.number} opened with v{version.number}'s entries.")
    return redirect("mappings-version", pk=draft.pk)


def _retire(request: HttpRequest, version: MappingVersion) -> HttpResponse:
    _acts(request, PUBLISH_PERMISSIONS)
    services.mapping_version_retire(version=version, user=request.user)
    messages.success(request, f"v{version.number} is retired: it maps nothing any more.")
    return redirect("mappings-version", pk=version.pk)


ACTIONS: dict[str, Handler] = {
    "entry_set": _entry_set,
    "entry_delete": _entry_delete,
    "import": _import,
    "update": _update,
    "submit": _submit,
    "send_back": _send_back,
    "publish": _publish,
    "rollback": _rollback,
    "new_draft": _new_draft,
    "retire": _retire,
}


@require_POST
def mapping_version_act(request: HttpRequest, pk: int) -> HttpResponse:
    """One action on a version (`ACTIONS`), through its service. A refusal (four eyes, a
    frozen version, a date taken) is shown as a message on the version page; a form error
    re-renders the page with the error beside the field."""
    _acts(request)
    version = _version(pk)
    handler = ACTIONS.get(request.POST.get("action", ""))
    if handler is None:
        messages.error(request, f"Unknown action {request.POST.get('action', '')!r}.")
        return redirect("mappings-version", pk=version.pk)
    try:
        return handler(request, version)
    except DomainError as refused:
        messages.error(request, " ".join(getattr(refused, "messages", None) or [str(refused)]))
        return redirect("mappings-version", pk=version.pk)
