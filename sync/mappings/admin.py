"""Admin for mapping admins: sets, versions with their entries, ownership rules, with history.

Every status move and every entry change goes through `sync.mappings.services`: the admin
actions call them, the entries inline saves through `mapping_entry_set/delete`, and the
version form saves through `mapping_version_update`. Entries are read-only unless the
version is a draft; versions are opened from a set ("Open a draft …") or another version.
Four eyes is the services' rule: publishing a version you authored (a rollback you asked for
included) is reported as an error message per version, like any other refusal.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from simple_history.admin import SimpleHistoryAdmin

from sync.errors import DomainError
from sync.mappings import ownership_services, services
from sync.mappings.models import (
    MappingEntry,
    MappingSet,
    MappingVersion,
    OwnershipChange,
    OwnershipRule,
)

Status = MappingVersion.Status


def _run_each(
    admin_view: admin.ModelAdmin,
    request: HttpRequest,
    objects: QuerySet,
    call: Callable[[Any], Any],
    *,
    done: str,
) -> None:
    """Call a service per selected object; report successes and each refusal as messages."""
    succeeded = 0
    for obj in objects:
        try:
            call(obj)
        except (DomainError, ValidationError) as error:
            text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
            admin_view.message_user(request, f"{obj}: {text}", messages.ERROR)
        else:
            succeeded += 1
    if succeeded:
        admin_view.message_user(request, f"{done}: {succeeded}.", messages.SUCCESS)


class EffectiveDateForm(forms.Form):
    effective_from = forms.DateField(
        help_text="First day records are mapped with the version (YYYY-MM-DD)."
    )


def _with_effective_date(
    admin_view: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    title: str,
    action: str,
    initial: dt.date | None,
    apply: Callable[[Any, dt.date], Any],
    done: str,
):
    """An action that first asks for an effective date on an intermediate page."""
    form = EffectiveDateForm(
        request.POST if "apply" in request.POST else None, initial={"effective_from": initial}
    )
    if "apply" in request.POST and form.is_valid():
        day = form.cleaned_data["effective_from"]
        _run_each(admin_view, request, queryset, lambda obj: apply(obj, day), done=done)
        return None
    context = {
        **admin_view.admin_site.each_context(request),
        "title": title,
        "objects": queryset,
        "form": form,
        "action": action,
        "opts": admin_view.model._meta,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/mappings/effective_date_action.html", context)


# --- sets ---------------------------------------------------------------------------------


class MappingVersionInline(admin.TabularInline):
    """The set's versions at a glance; each opens on its own page."""

    model = MappingVersion
    fields = ("number", "status", "effective_from", "published_at", "published_by", "notes")
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MappingSet)
class MappingSetAdmin(SimpleHistoryAdmin):
    list_display = ("slug", "name", "kind", "system", "connector")
    list_filter = ("kind", "system")
    search_fields = ("slug", "name", "description")
    inlines = [MappingVersionInline]
    history_list_display = ["history_actor"]
    actions = ["draft_from_latest"]

    def get_readonly_fields(self, request, obj=None):
        # The slug is the key code and stored records use: fixed once the set exists.
        return ("slug", "created_at") if obj else ("created_at",)

    @admin.action(
        description="Open a draft from the latest published version", permissions=["change"]
    )
    def draft_from_latest(self, request, queryset):
        def draft(mapping_set: MappingSet) -> MappingVersion:
            base = (
                mapping_set.versions.filter(status=Status.PUBLISHED)
                .order_by("-effective_from")
                .first()
            )
            return services.mapping_version_create_draft(
                mapping_set=mapping_set, based_on=base, user=request.user
            )

        _run_each(self, request, queryset, draft, done="Drafts opened")


# --- versions and entries -----------------------------------------------------------------


class MappingEntryInline(admin.TabularInline):
    """Entries of a version: editable in a draft, read-only once submitted."""

    model = MappingEntry
    fields = ("source_value", "target_value", "attributes")
    extra = 0

    def _editable(self, obj) -> bool:
        return obj is not None and obj.is_editable

    def has_add_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


@admin.register(MappingVersion)
class MappingVersionAdmin(SimpleHistoryAdmin):
    list_display = (
        "mapping_set",
        "number",
        "status",
        "effective_from",
        "published_at",
        "published_by",
    )
    list_filter = ("status", "mapping_set__kind", "mapping_set")
    list_select_related = ("mapping_set", "published_by")
    search_fields = ("mapping_set__slug", "mapping_set__name", "notes")
    ordering = ("mapping_set__slug", "-number")
    inlines = [MappingEntryInline]
    history_list_display = ["history_actor"]
    actions = ["submit", "send_back", "publish", "retire", "draft_from_selected", "rollback"]
    _ALWAYS_READ_ONLY = (
        "mapping_set",
        "number",
        "status",
        "based_on",
        "created_at",
        "created_by",
        "submitted_at",
        "submitted_by",
        "published_at",
        "published_by",
        "retired_at",
        "retired_by",
    )

    def has_add_permission(self, request) -> bool:
        return False  # drafts are opened by an action, which numbers them and copies entries

    def has_publish_permission(self, request) -> bool:
        """Reviewers send back, publish, retire and roll back: `publish_mappingversion`."""
        return request.user.has_perm("mappings.publish_mappingversion")

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status in MappingVersion.FROZEN_STATUSES:
            return (*self._ALWAYS_READ_ONLY, "effective_from", "notes")
        return self._ALWAYS_READ_ONLY

    def save_model(self, request, obj, form, change) -> None:
        if form.has_changed():
            services.mapping_version_update(
                version=obj,
                effective_from=form.cleaned_data.get("effective_from"),
                notes=form.cleaned_data.get("notes", ""),
                user=request.user,
            )

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not MappingEntry:
            super().save_formset(request, form, formset, change)
            return
        version = form.instance
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for entry_form in formset.deleted_forms:
            original = entry_form.initial.get("source_value")
            if entry_form.instance.pk and original is not None:
                services.mapping_entry_delete(
                    version=version, source_value=original, user=request.user
                )
                formset.deleted_objects.append(entry_form.instance)
        for entry_form in formset.forms:
            if entry_form in formset.deleted_forms or not entry_form.has_changed():
                continue
            data = entry_form.cleaned_data
            original = entry_form.initial.get("source_value")
            if original is not None and original != data["source_value"]:
                services.mapping_entry_delete(
                    version=version, source_value=original, user=request.user
                )
            entry = services.mapping_entry_set(
                version=version,
                source_value=data["source_value"],
                target_value=data["target_value"],
                attributes=data.get("attributes") or {},
                user=request.user,
            )
            if original is None:
                formset.new_objects.append(entry)
            else:
                formset.changed_objects.append((entry, entry_form.changed_data))

    @admin.action(description="Submit for review", permissions=["change"])
    def submit(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            lambda v: services.mapping_version_submit(version=v, user=request.user),
            done="Submitted for review",
        )

    @admin.action(description="Send back to draft", permissions=["publish"])
    def send_back(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            lambda v: services.mapping_version_send_back(version=v, user=request.user),
            done="Sent back to draft",
        )

    @admin.action(description="Publish…", permissions=["publish"])
    def publish(self, request, queryset):
        planned = {v.effective_from for v in queryset}
        return _with_effective_date(
            self,
            request,
            queryset,
            title="Publish mapping versions",
            action="publish",
            initial=planned.pop() if len(planned) == 1 else None,
            apply=lambda v, day: services.mapping_version_publish(
                version=v, effective_from=day, user=request.user
            ),
            done="Published",
        )

    @admin.action(description="Retire", permissions=["publish"])
    def retire(self, request, queryset):
        _run_each(
            self,
            request,
            queryset,
            lambda v: services.mapping_version_retire(version=v, user=request.user),
            done="Retired",
        )

    @admin.action(description="Open a new draft from this version", permissions=["change"])
    def draft_from_selected(self, request, queryset):
        _run_each(
            self,
            request,
            queryset.select_related("mapping_set"),
            lambda v: services.mapping_version_create_draft(
                mapping_set=v.mapping_set, based_on=v, user=request.user
            ),
            done="Drafts opened",
        )

    @admin.action(
        description="Roll back to this version (submits a copy for review)…",
        permissions=["publish"],
    )
    def rollback(self, request, queryset):
        # Four eyes: the copy waits in review for another mapping admin to publish it.
        return _with_effective_date(
            self,
            request,
            queryset.select_related("mapping_set"),
            title=(
                "Roll back: submit a new version with these entries for review "
                "(another mapping admin publishes it)"
            ),
            action="rollback",
            initial=None,
            apply=lambda v, day: services.mapping_version_rollback(
                mapping_set=v.mapping_set, to_version=v, effective_from=day, user=request.user
            ),
            done="Rollbacks submitted for review (another mapping admin publishes them)",
        )


# --- ownership ----------------------------------------------------------------------------


class OwnershipRuleForm(forms.ModelForm):
    class Meta:
        model = OwnershipRule
        fields = ("entity", "field", "owner_system", "effective_from", "effective_to", "notes")

    def _post_clean(self) -> None:
        # A new rule may start inside an open-ended earlier rule: the service ends that rule
        # on the new rule's start (a handover) instead of refusing it.
        self.instance.handover_allowed = self.instance.pk is None
        super()._post_clean()


@admin.register(OwnershipRule)
class OwnershipRuleAdmin(SimpleHistoryAdmin):
    form = OwnershipRuleForm
    list_display = ("entity", "field", "owner_system", "effective_from", "effective_to")
    list_filter = ("owner_system", "entity")
    search_fields = ("entity", "field", "notes")
    history_list_display = ["history_actor"]

    def get_readonly_fields(self, request, obj=None):
        return ("entity", "field") if obj else ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # end a rule with effective_to instead; its history stays readable

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        if change:
            saved = ownership_services.ownership_rule_update(
                rule=obj,
                owner_system=data["owner_system"],
                effective_from=data["effective_from"],
                effective_to=data["effective_to"],
                notes=data["notes"],
                user=request.user,
            )
        else:
            saved = ownership_services.ownership_rule_set(
                entity=data["entity"],
                field=data["field"],
                owner_system=data["owner_system"],
                effective_from=data["effective_from"],
                effective_to=data["effective_to"],
                notes=data["notes"],
                user=request.user,
            )
        obj.pk = saved.pk


@admin.register(OwnershipChange)
class OwnershipChangeAdmin(SimpleHistoryAdmin):
    """Read-only: change requests are proposed, reviewed and published on /ownership/, whose
    services enforce four eyes."""

    list_display = ("pk", "entity", "field", "owner_system", "effective_from", "status")
    list_filter = ("status", "owner_system", "entity")
    search_fields = ("entity", "field", "reason")
    history_list_display = ["status", "history_actor"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
