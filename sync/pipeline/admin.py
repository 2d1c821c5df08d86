"""Admin pages for the pipeline: connections (credentials write-only), inbox, deliveries, target
records, runs, exception items. The finance UI for exception queues lives in the portal; this
is ops tooling."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from sync.connectors.http import json_decode
from sync.pipeline.models import (
    Connection,
    Delivery,
    ExceptionItem,
    InboxItem,
    SyncRun,
    TargetRecord,
)

CORRELATION_PREFIX = "correlation:"
OWN_CORRELATION_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, as sync.pipeline.inbox makes them


class ConnectionForm(forms.ModelForm):
    base_url = forms.URLField(max_length=500, required=False, assume_scheme="https")
    new_credentials = forms.CharField(
        required=False,
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text='JSON object, e.g. {"token": "…"}. Stored encrypted and never shown again; '
        "leave blank to keep the current credentials.",
    )

    class Meta:
        model = Connection
        fields = [
            "name",
            "system",
            "dialect",
            "base_url",
            "enabled",
            "rate_per_second",
            "max_concurrency",
            "timeout_seconds",
            "pull_interval_seconds",
            "circuit_open_until",
        ]

    def clean_new_credentials(self) -> dict | None:
        raw = self.cleaned_data["new_credentials"].strip()
        if not raw:
            return None
        try:
            value = json_decode(raw)  # the product's one JSON reader: ValueError, never more
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {getattr(exc, 'msg', exc)}.") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("Credentials must be a JSON object.")
        return value

    def clean(self) -> dict:
        cleaned = super().clean()
        moved = self.instance.pk and "base_url" in self.changed_data
        if moved and self.instance.credentials and cleaned.get("new_credentials") is None:
            # Otherwise anyone who may edit a connection could send its secret to their host.
            self.add_error(
                "new_credentials", "Re-enter the credentials when you change the base URL."
            )
        return cleaned

    def save(self, commit: bool = True) -> Connection:
        connection = super().save(commit=False)
        if self.cleaned_data.get("new_credentials") is not None:
            connection.credentials_set(self.cleaned_data["new_credentials"])
        if commit:
            connection.save()
        return connection


@admin.register(Connection)
class ConnectionAdmin(SimpleHistoryAdmin):
    form = ConnectionForm
    list_display = [
        "name",
        "system",
        "dialect",
        "base_url",
        "enabled",
        "has_credentials",
        "circuit_open_until",
    ]
    list_filter = ["system", "dialect", "enabled"]
    # The history view would show ciphertext; it is still no place for credentials.
    history_list_display = ["enabled", "base_url"]

    @admin.display(boolean=True, description="credentials set")
    def has_credentials(self, obj: Connection) -> bool:
        return bool(obj.credentials)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Disabled, never deleted: its inbox rows, deliveries and runs keep pointing at it
        # (and the inbox is not indexed by connection: decision 21).
        return False


class CorrelationIdSearch:
    """A correlation id finds its trace through the table's correlation index.

    `correlation:<id>` lists exactly the rows carrying that id (ids can come from a sender's
    X-Correlation-ID header, in any form). A bare 32-hex term, the form of the ids this product
    makes, does the same when some row carries it, and otherwise searches as usual. Any other
    term searches as usual: `icontains` over the search fields, a sequential scan.
    """

    search_help_text = (
        "Any part of the fields listed, or a correlation id: pasted whole (32 "
        "hex characters) or as correlation:<id>, found exactly."
    )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term.lower().startswith(CORRELATION_PREFIX):
            return queryset.filter(correlation_id=term[len(CORRELATION_PREFIX) :].strip()), False
        if OWN_CORRELATION_ID.fullmatch(term):
            traced = queryset.filter(correlation_id=term)
            if traced.exists():
                return traced, False
        return super().get_search_results(request, queryset, search_term)


@admin.register(InboxItem)
class InboxItemAdmin(CorrelationIdSearch, admin.ModelAdmin):
    list_display = [
        "id",
        "system",
        "entity",
        "external_id",
        "status",
        "received_at",
        "correlation_id",
    ]
    list_filter = ["system", "entity", "status"]
    search_fields = ["external_id", "correlation_id"]
    readonly_fields = [f.name for f in InboxItem._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(CorrelationIdSearch, admin.ModelAdmin):
    list_display = [
        "id",
        "operation",
        "external_id",
        "record_version",
        "state",
        "attempts",
        "next_attempt_at",
        "target_id",
    ]
    list_filter = ["state", "operation", "connection"]
    search_fields = ["external_id", "idempotency_key", "correlation_id", "target_id"]
    show_full_result_count = False  # a row per posting: no whole-table count on every page
    readonly_fields = [f.name for f in Delivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(TargetRecord)
class TargetRecordAdmin(admin.ModelAdmin):
    """Read-only: what the targets hold is learned from them, never typed in."""

    list_display = [
        "id",
        "connection",
        "record_type",
        "external_id",
        "target_id",
        "source",
        "seen_at",
    ]
    list_filter = ["connection", "record_type", "source"]
    search_fields = ["external_id", "target_id"]
    readonly_fields = [f.name for f in TargetRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "connection",
        "entity",
        "status",
        "started_at",
        "finished_at",
        "pulled",
        "created",
        "updated",
        "unchanged",
        "refused",
        "failed",
        "delivered",
    ]
    list_filter = ["kind", "status"]
    readonly_fields = [f.name for f in SyncRun._meta.fields]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a run is the audit trail of what it wrote (history actor `run:<id>`)


@admin.register(ExceptionItem)
class ExceptionItemAdmin(CorrelationIdSearch, SimpleHistoryAdmin):
    list_display = [
        "id",
        "queue",
        "code",
        "record_key",
        "status",
        "money_at_risk",
        "currency",
        "occurrences",
        "sla_due_at",
        "assignee",
    ]
    list_filter = ["queue", "status", "stage", "code"]
    search_fields = ["record_key", "correlation_id", "root_cause"]
    readonly_fields = [f.name for f in ExceptionItem._meta.fields if f.name != "assignee"]

    def has_add_permission(self, request) -> bool:
        return False  # items are raised by the pipeline, never typed in
