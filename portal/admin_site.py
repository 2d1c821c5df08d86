"""The admin site, and the guard every page registered on it passes through.

`LedgerbridgeAdminSite.register` puts `AdminGuard` (and, for history admins, `HistoryGuard`)
in front of every ModelAdmin, ours and third parties' alike, so that a newly registered model
cannot reopen what is closed here:

- **History is read-only.** Reverting a record through simple-history's history form would
  bypass the services (lifecycle, four eyes, ownership) and, in the library, needs only view
  permission: a POST to that form answers 403 for everyone. Corrections go through the
  change form or the services, which check permissions and write history of their own.
- **Filters are the list filters.** A changelist accepts only the query parameters its list
  filters and date hierarchy produce, with the lookups they use; anything else (`__regex`,
  a lookup on an unlisted field, a NUL byte, a year past 9998) answers 400 instead of a 500 or
  an oracle on values the page does not show.
- **Masking.** Credentials are never shown and cost rates only to `sync.view_cost_rate`
  (`sync.redaction`): in lists, change and history forms, read-only JSON payloads and
  history diffs.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from django.contrib import admin
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from sync.redaction import MASK, cost_rates_visible_to, field_redacted, value_redact

# The lookups Django's own list filters put in a changelist URL.
FILTER_LOOKUPS = frozenset({"exact", "isnull", "isempty", "in", "gte", "gt", "lt", "lte"})
DATE_PARTS = {"year": (1, dt.MAXYEAR - 1), "month": (1, 12), "day": (1, 31)}


# Cached: Django compares the callables of one request's several get_readonly_fields() calls.
@functools.cache
def _masked_column(name: str, label: str):
    def column(obj: Any) -> str:
        return MASK

    column.__name__ = name
    column.short_description = label
    return column


@functools.cache
def _redacted_json(name: str, label: str, *, cost_rates_visible: bool):
    def column(obj: Any) -> Any:
        return value_redact(getattr(obj, name), cost_rates_visible=cost_rates_visible)

    column.__name__ = name
    column.short_description = label
    return column


class AdminGuard:
    """Lookups, masking: see the module docstring. Put in front of every ModelAdmin."""

    def _cost_rates_visible(self, request) -> bool:
        return cost_rates_visible_to(request.user)

    def _redacted_field_names(self, request) -> set[str]:
        visible = self._cost_rates_visible(request)
        return {
            f.name
            for f in self.model._meta.get_fields()
            if field_redacted(f.name, cost_rates_visible=visible)
        }

    def _label(self, name: str) -> str:
        return str(self.model._meta.get_field(name).verbose_name)

    # -- masking ---------------------------------------------------------------------------
    def _swapped(self, request, obj) -> set[str]:
        """Names shown through a masking callable instead of the model field itself."""
        json_readonly = {
            name
            for name in super().get_readonly_fields(request, obj)
            if isinstance(self._model_field(name), models.JSONField)
        }
        return self._redacted_field_names(request) | json_readonly

    def get_exclude(self, request, obj=None):
        # Excluded from the form, or a page a user may only view would show the raw field.
        base = super().get_exclude(request, obj)
        swapped = self._swapped(request, obj)
        if not swapped:
            return base
        if base is None:  # Django then falls back on the form's own Meta.exclude: keep it
            base = getattr(getattr(self.form, "_meta", None), "exclude", None)
        exclude = list(base or ())
        return [*exclude, *sorted(swapped - set(exclude))]

    def get_list_display(self, request):
        hidden = self._redacted_field_names(request)
        return [
            _masked_column(name, self._label(name))
            if isinstance(name, str) and name in hidden
            else name
            for name in super().get_list_display(request)
        ]

    def get_readonly_fields(self, request, obj=None):
        hidden = self._redacted_field_names(request)
        visible = self._cost_rates_visible(request)
        declared = list(super().get_readonly_fields(request, obj))
        shown = []
        for name in declared:
            field = self._model_field(name)
            if field is None:
                shown.append(name)
            elif name in hidden:
                shown.append(_masked_column(name, self._label(name)))
            elif isinstance(field, models.JSONField):
                shown.append(_redacted_json(name, self._label(name), cost_rates_visible=visible))
            else:
                shown.append(name)
        # An editable field that is masked shows as a masked line instead of an input.
        editable = {f.name for f in self.model._meta.concrete_fields if f.editable}
        shown += [
            _masked_column(name, self._label(name))
            for name in sorted((hidden & editable) - set(declared))
        ]
        return shown

    def get_fields(self, request, obj=None):
        swapped = self._swapped(request, obj)
        return [f for f in super().get_fields(request, obj) if f not in swapped]

    def _model_field(self, name: Any) -> models.Field | None:
        if not isinstance(name, str):
            return None
        try:
            return self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return None

    # -- lookups ---------------------------------------------------------------------------
    def _filter_paths(self) -> tuple[set[str], set[str]]:
        """(field paths the list filters cover, parameter names of custom filter classes)."""
        paths: set[str] = set()
        parameters: set[str] = set()
        for entry in self.list_filter:
            if isinstance(entry, str):
                paths.add(entry)
            elif isinstance(entry, tuple | list):
                field = entry[0]
                paths.add(field if isinstance(field, str) else field.name)
            elif getattr(entry, "parameter_name", None):
                parameters.add(entry.parameter_name)
        return paths, parameters

    def _filter_lookup_allowed(self, lookup: str, value: str) -> bool:
        paths, parameters = self._filter_paths()
        if lookup in parameters:
            return True
        if self.date_hierarchy:
            prefix = f"{self.date_hierarchy}{LOOKUP_SEP}"
            part = lookup.removeprefix(prefix)
            if lookup.startswith(prefix) and part in DATE_PARTS:
                low, high = DATE_PARTS[part]
                return value.isascii() and value.isdigit() and low <= int(value) <= high
        path, _, last = lookup.rpartition(LOOKUP_SEP)
        if last not in FILTER_LOOKUPS:
            path = lookup  # a bare field path means exact (AllValuesFieldListFilter)
        if path in paths:
            return True
        # A related filter names the target's key: `legal_entity__id__exact`.
        owner, _, key = path.rpartition(LOOKUP_SEP)
        return owner in paths and key in {"id", "pk", self._related_key(owner)}

    def _related_key(self, path: str) -> str:
        model = self.model
        field = None
        for part in path.split(LOOKUP_SEP):
            try:
                field = model._meta.get_field(part)
            except FieldDoesNotExist:
                return ""
            model = field.related_model
            if model is None:
                return ""
        return field.target_field.name if field is not None and field.is_relation else ""

    def lookup_allowed(self, lookup, value, request=None):
        if not self._filter_lookup_allowed(lookup, str(value)):
            return False
        return super().lookup_allowed(lookup, value, request)

    def changelist_view(self, request, extra_context=None):
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                raise DisallowedModelAdminLookup("A query parameter holds a NUL character.")
        return super().changelist_view(request, extra_context)


class RedactingContextHelper(HistoricalRecordContextHelper):
    """History diffs with credentials masked for everyone and cost rates for readers without
    the permission, inside JSON values too."""

    def __init__(self, *args, cost_rates_visible: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cost_rates_visible = cost_rates_visible

    def prepare_delta_change_value(self, change, value):
        if field_redacted(change.field, cost_rates_visible=self.cost_rates_visible):
            return MASK
        value = value_redact(value, cost_rates_visible=self.cost_rates_visible)
        return super().prepare_delta_change_value(change, value)


class HistoryGuard:
    """History admins: read-only history form, redacted diffs."""

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method != "GET":
            raise PermissionDenied("History is read-only: change the record itself instead.")
        return super().history_form_view(request, object_id, version_id, extra_context)

    def get_historical_record_context_helper(self, request, historical_record):
        return RedactingContextHelper(
            self.model,
            historical_record,
            cost_rates_visible=cost_rates_visible_to(request.user),
        )


def guarded(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """`admin_class` with the guards in front of it (once)."""
    if issubclass(admin_class, AdminGuard):
        return admin_class
    guards = (
        (HistoryGuard, AdminGuard) if issubclass(admin_class, SimpleHistoryAdmin) else (AdminGuard,)
    )
    return type(
        admin_class.__name__,
        (*guards, admin_class),
        {"__module__": admin_class.__module__, "__doc__": admin_class.__doc__},
    )


class LedgerbridgeAdminSite(admin.AdminSite):
    site_header = "Ledgerbridge administration"
    site_title = "Ledgerbridge"

    def register(self, model_or_iterable, admin_class=None, **options):
        super().register(model_or_iterable, guarded(admin_class or admin.ModelAdmin), **options)
