"""Admin for the canonical model: every record with its history (who, when, what changed).

Every change form (and inline) refuses, as form errors, what a save would refuse: an illegal
status move, an edit of a frozen record, and a form opened before someone else saved the record
(the form carries the version it was opened at). Nothing is written then.

Worker cost rates are shown as "••••" to anyone without `sync.view_cost_rate`, in lists,
forms and history alike, by the guard every admin passes through (portal/admin_site.py).
"""

from __future__ import annotations

import copy

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.forms.models import construct_instance
from simple_history.admin import SimpleHistoryAdmin

from sync import models as m
from sync.errors import IllegalTransition, ImmutableRecord, StaleRecord


class CanonicalAdminForm(forms.ModelForm):
    """A canonical record's admin form: the model's write rules become form errors, not a 500.

    `clean()` applies the submitted values to a copy of the record and runs the checks its
    save would run (`CanonicalModel.write_check`), so an IllegalTransition or ImmutableRecord
    is shown on the form. `loaded_version` carries the version the form was opened at: a form
    opened before someone else saved the record is refused like a StaleRecord, rather than
    silently overwriting their change. A change between this check and the save itself still
    raises StaleRecord from the save (nothing is written).
    """

    loaded_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:
            self.fields["loaded_version"].initial = self.instance.version

    def clean(self):
        cleaned = super().clean()
        record = self.instance
        if record._state.adding:
            return cleaned  # the status field's choices already refuse an unknown status
        opened_at = cleaned.get("loaded_version")
        if opened_at is not None and opened_at != record.version:
            stale = StaleRecord(
                model=type(record).__name__,
                pk=record.pk,
                loaded_version=opened_at,
                stored_version=record.version,
            )
            raise ValidationError(str(stale), code="stale")
        # The instance itself is only updated after clean() (in _post_clean): check a copy.
        candidate = copy.copy(record)
        construct_instance(self, candidate, self._meta.fields, self._meta.exclude)
        status_field = record.STATUS_FIELD
        try:
            candidate.write_check()
        except IllegalTransition as exc:
            self.add_error(status_field if status_field in self.fields else None, str(exc))
        except ImmutableRecord as exc:
            raise ValidationError(str(exc), code="immutable") from exc
        return cleaned


class CanonicalAdmin(SimpleHistoryAdmin):
    """Shared behaviour: write rules as form errors, bookkeeping columns read-only, the actor
    beside each history row."""

    form = CanonicalAdminForm
    readonly_fields = ("version", "created_at", "updated_at")
    history_list_display = ["history_actor"]
    list_per_page = 50
    show_full_result_count = False  # counting millions of time rows on every page is slow


@admin.register(m.Currency)
class CurrencyAdmin(CanonicalAdmin):
    list_display = ("code", "name", "minor_units", "status")
    list_filter = ("status", "minor_units")
    search_fields = ("code", "name")


@admin.register(m.LegalEntity)
class LegalEntityAdmin(CanonicalAdmin):
    list_display = ("code", "name", "country", "functional_currency", "status")
    list_filter = ("status", "country", "functional_currency")
    search_fields = ("code", "name")


@admin.register(m.FxRate)
class FxRateAdmin(CanonicalAdmin):
    list_display = ("from_currency", "to_currency", "rate", "effective_date", "status")
    list_filter = ("from_currency", "to_currency", "status")
    date_hierarchy = "effective_date"


@admin.register(m.TaxCode)
class TaxCodeAdmin(CanonicalAdmin):
    list_display = ("code", "jurisdiction", "rate", "status")
    list_filter = ("jurisdiction", "status")
    search_fields = ("code", "jurisdiction")


@admin.register(m.CostCentre)
class CostCentreAdmin(CanonicalAdmin):
    list_display = ("code", "name", "legal_entity", "status")
    list_filter = ("legal_entity", "status")
    search_fields = ("code", "name")


@admin.register(m.AccountingPeriod)
class AccountingPeriodAdmin(CanonicalAdmin):
    list_display = ("legal_entity", "start_date", "end_date", "status")
    list_filter = ("legal_entity", "status")
    date_hierarchy = "start_date"


@admin.register(m.Customer)
class CustomerAdmin(CanonicalAdmin):
    list_display = ("name", "legal_entity", "tax_id", "credit_status", "status")
    list_filter = ("status", "credit_status", "legal_entity")
    search_fields = ("name", "tax_id", "correlation_id")


@admin.register(m.Opportunity)
class OpportunityAdmin(CanonicalAdmin):
    list_display = ("name", "customer", "amount", "currency", "close_date", "stage")
    list_filter = ("stage", "currency")
    search_fields = ("name", "customer__name", "correlation_id")
    date_hierarchy = "close_date"
    list_select_related = ("customer",)


@admin.register(m.Contract)
class ContractAdmin(CanonicalAdmin):
    list_display = (
        "name",
        "customer",
        "billing_model",
        "value",
        "currency",
        "start_date",
        "status",
    )
    list_filter = ("status", "billing_model", "currency")
    search_fields = ("name", "customer__name", "correlation_id")
    list_select_related = ("customer",)


class RateCardLineInline(admin.TabularInline):
    model = m.RateCardLine
    form = CanonicalAdminForm
    extra = 0
    fields = (
        "role",
        "service_item_code",
        "bill_rate",
        "currency",
        "effective_from",
        "effective_to",
    )
    show_change_link = True


@admin.register(m.RateCard)
class RateCardAdmin(CanonicalAdmin):
    list_display = ("name", "legal_entity", "currency", "status")
    list_filter = ("legal_entity", "currency", "status")
    search_fields = ("name",)
    inlines = [RateCardLineInline]


@admin.register(m.RateCardLine)
class RateCardLineAdmin(CanonicalAdmin):
    list_display = (
        "rate_card",
        "role",
        "service_item_code",
        "bill_rate",
        "currency",
        "effective_from",
        "effective_to",
        "status",
    )
    list_filter = ("rate_card", "currency", "status")
    search_fields = ("role", "service_item_code")


@admin.register(m.Project)
class ProjectAdmin(CanonicalAdmin):
    list_display = ("code", "name", "customer", "legal_entity", "currency", "status")
    list_filter = ("status", "legal_entity", "currency")
    search_fields = ("code", "name", "customer__name", "correlation_id")
    list_select_related = ("customer", "legal_entity")


@admin.register(m.Task)
class TaskAdmin(CanonicalAdmin):
    list_display = ("code", "name", "project", "parent", "allows_time", "status")
    list_filter = ("status", "allows_time")
    search_fields = ("code", "name", "project__code")
    list_select_related = ("project", "parent")


@admin.register(m.Worker)
class WorkerAdmin(CanonicalAdmin):
    list_display = (
        "employee_number",
        "name",
        "legal_entity",
        "cost_centre",
        "manager",
        "employment_status",
        "cost_rate",  # masked without sync.view_cost_rate (portal/admin_site.py)
        "cost_rate_currency",
    )
    list_filter = ("employment_status", "legal_entity", "cost_centre")
    search_fields = ("employee_number", "name", "email")
    list_select_related = ("legal_entity", "cost_centre", "manager")


@admin.register(m.RolePlaceholder)
class RolePlaceholderAdmin(CanonicalAdmin):
    list_display = ("role_name", "project", "status")
    list_filter = ("status",)
    search_fields = ("role_name", "project__code")


@admin.register(m.Assignment)
class AssignmentAdmin(CanonicalAdmin):
    list_display = (
        "project",
        "task",
        "worker",
        "role_placeholder",
        "start_date",
        "end_date",
        "hours_per_week",
        "status",
    )
    list_filter = ("status",)
    search_fields = ("project__code", "worker__name", "role_placeholder__role_name")
    date_hierarchy = "start_date"
    list_select_related = ("project", "task", "worker", "role_placeholder")


@admin.register(m.Milestone)
class MilestoneAdmin(CanonicalAdmin):
    list_display = ("name", "project", "contract", "amount", "currency", "due_date", "status")
    list_filter = ("status", "currency")
    search_fields = ("name", "project__code")
    date_hierarchy = "due_date"
    list_select_related = ("project", "contract")


@admin.register(m.UsageRecord)
class UsageRecordAdmin(CanonicalAdmin):
    list_display = (
        "contract",
        "period_date",
        "quantity",
        "unit",
        "unit_price",
        "currency",
        "status",
    )
    list_filter = ("status", "unit", "currency")
    search_fields = ("contract__name",)
    date_hierarchy = "period_date"
    list_select_related = ("contract",)


@admin.register(m.TimeEntry)
class TimeEntryAdmin(CanonicalAdmin):
    list_display = (
        "psa_id",
        "work_date",
        "worker",
        "project",
        "task",
        "hours",
        "billable",
        "bill_rate",
        "currency",
        "status",
        "approved_at",
    )
    list_filter = ("status", "billable", "currency")
    # "=psa_id": an exact match, which the unique index answers (a contains-search would scan).
    search_fields = (
        "=psa_id",
        "worker__name",
        "worker__employee_number",
        "project__code",
        "correlation_id",
    )
    readonly_fields = ("psa_id", *CanonicalAdmin.readonly_fields)
    date_hierarchy = "work_date"
    list_select_related = ("worker", "project", "task")
    raw_id_fields = ("worker", "project", "task")


@admin.register(m.Expense)
class ExpenseAdmin(CanonicalAdmin):
    list_display = (
        "incurred_date",
        "worker",
        "project",
        "category",
        "amount",
        "currency",
        "billable",
        "status",
    )
    list_filter = ("status", "category", "billable", "currency")
    search_fields = ("worker__name", "project__code", "correlation_id")
    date_hierarchy = "incurred_date"
    list_select_related = ("worker", "project")
    raw_id_fields = ("worker", "project", "task")


@admin.register(m.InvoiceCandidate)
class InvoiceCandidateAdmin(CanonicalAdmin):
    list_display = (
        "pk",
        "contract",
        "project",
        "source_kind",
        "amount",
        "currency",
        "status",
        "created_at",
    )
    list_filter = ("status", "source_kind", "currency")
    search_fields = ("contract__name", "project__code", "correlation_id")
    list_select_related = ("contract", "project")


class InvoiceLineInline(admin.TabularInline):
    model = m.InvoiceLine
    form = CanonicalAdminForm
    extra = 0
    fields = ("description", "quantity", "unit_amount", "amount", "currency", "tax_code", "status")
    show_change_link = True


@admin.register(m.Invoice)
class InvoiceAdmin(CanonicalAdmin):
    list_display = (
        "number",
        "customer",
        "legal_entity",
        "issue_date",
        "due_date",
        "total",
        "currency",
        "status",
    )
    list_filter = ("status", "legal_entity", "currency")
    search_fields = ("number", "customer__name", "correlation_id")
    date_hierarchy = "issue_date"
    list_select_related = ("customer", "legal_entity")
    inlines = [InvoiceLineInline]


@admin.register(m.InvoiceLine)
class InvoiceLineAdmin(CanonicalAdmin):
    list_display = (
        "invoice",
        "description",
        "quantity",
        "unit_amount",
        "amount",
        "currency",
        "tax_code",
        "status",
    )
    list_filter = ("status", "currency")
    search_fields = ("description", "invoice__number")
    raw_id_fields = ("invoice", "candidate")


@admin.register(m.Payment)
class PaymentAdmin(CanonicalAdmin):
    list_display = ("invoice", "amount", "currency", "received_date", "status")
    list_filter = ("status", "currency")
    search_fields = ("invoice__number", "correlation_id")
    date_hierarchy = "received_date"
    raw_id_fields = ("invoice",)


@admin.register(m.RevenueEntry)
class RevenueEntryAdmin(CanonicalAdmin):
    list_display = ("project", "period_date", "amount", "currency", "status")
    list_filter = ("status", "currency")
    search_fields = ("project__code",)
    date_hierarchy = "period_date"


@admin.register(m.ExternalRef)
class ExternalRefAdmin(CanonicalAdmin):
    list_display = (
        "system",
        "content_type",
        "object_id",
        "external_id",
        "last_synced_at",
        "status",
    )
    list_filter = ("system", "content_type", "status")
    search_fields = ("external_id", "object_id")
