"""The one filter over exception items, for the portal's queue pages and the API alike.

Every filter is a query parameter, so a filtered list is a URL a person can keep and share.
Values that do not parse are form errors (the filter is then not applied and the page says
why), never a 500.
"""

from __future__ import annotations

import datetime as dt

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from sync.pipeline.models import ExceptionItem
from sync.pipeline.models.exception_items import Queue

SYSTEMS = (("psa", "PSA"), ("erp", "ERP"), ("hr", "HR"), ("crm", "CRM"), ("billing", "Billing"))
TABS = (("mine", "Mine"), ("unassigned", "Unassigned"), ("past_sla", "Past SLA"))
STATUSES = (("open", "Open and in progress"), *ExceptionItem.Status.choices)


class ExceptionItemFilter(django_filters.FilterSet):
    """Filters people combine on a queue: all optional, all in the URL."""

    tab = django_filters.ChoiceFilter(choices=TABS, method="_tab", empty_label="All", label="Tab")
    queue = django_filters.ChoiceFilter(choices=Queue.choices, empty_label="Any queue")
    code = django_filters.CharFilter(lookup_expr="exact", max_length=64)
    status = django_filters.ChoiceFilter(
        choices=STATUSES, method="_status", empty_label="Open", label="Status"
    )
    system = django_filters.ChoiceFilter(
        choices=SYSTEMS, method="_system", empty_label="Any", label="System"
    )
    # A code typed or linked (e.g. LB-NL), not a choice list: the codes in use would be a
    # DISTINCT over every item. Within a user's own scope: it narrows, never widens.
    legal_entity = django_filters.CharFilter(
        lookup_expr="exact", max_length=20, label="Legal entity"
    )
    assignee = django_filters.CharFilter(method="_assignee", max_length=150, label="Assignee")
    older_than_days = django_filters.NumberFilter(
        method="_older", min_value=0, max_value=3650, label="Older than (days)"
    )
    min_amount = django_filters.NumberFilter(
        field_name="money_at_risk",
        lookup_expr="gte",
        min_value=0,
        max_digits=18,
        decimal_places=2,
        label="At risk from",
    )
    max_amount = django_filters.NumberFilter(
        field_name="money_at_risk",
        lookup_expr="lte",
        min_value=0,
        max_digits=18,
        decimal_places=2,
        label="At risk up to",
    )
    correlation_id = django_filters.CharFilter(max_length=64, label="Correlation id")
    root_cause = django_filters.CharFilter(max_length=64, label="Root cause")
    q = django_filters.CharFilter(method="_text", max_length=200, label="Search")

    class Meta:
        model = ExceptionItem
        fields = []

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    @property
    def qs(self) -> QuerySet[ExceptionItem]:
        items = super().qs
        if not self.form.is_valid() or not self.form.cleaned_data.get("status"):
            items = items.filter(status__in=ExceptionItem.OPEN_STATUSES)
        return items

    def _tab(self, items, name, value):
        if value == "mine" and self.user is not None:
            return items.filter(assignee=self.user)
        if value == "unassigned":
            return items.filter(assignee__isnull=True)
        if value == "past_sla":
            return items.filter(sla_due_at__lt=timezone.now())
        return items

    def _status(self, items, name, value):
        if value == "open":
            return items.filter(status__in=ExceptionItem.OPEN_STATUSES)
        return items.filter(status=value)

    def _system(self, items, name, value):
        return items.filter(record_key__startswith=f"{value}:")

    def _assignee(self, items, name, value):
        return items.filter(assignee__username=value)

    def _older(self, items, name, value):
        return items.filter(first_failed_at__lt=timezone.now() - dt.timedelta(days=int(value)))

    def _text(self, items, name, value):
        value = value.replace("\x00", "").strip()
        if not value:
            return items
        return items.filter(
            Q(record_key__icontains=value) | Q(message__icontains=value) | Q(code__iexact=value)
        )
