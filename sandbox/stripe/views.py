"""Stripe customers, events and webhook endpoints handlers (invoices are in invoicing.py)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from sandbox.core.protocol import Request, Response
from sandbox.models import SandboxEvent, SandboxWebhookDelivery
from sandbox.router import SANDBOX_DB
from sandbox.stripe import forms, services, webhooks
from sandbox.stripe.api import (
    LIST_PARAMS,
    idempotent_post,
    list_answer,
    list_page,
    params,
    records,
    request_ref,
)
from sandbox.stripe.objects import SYSTEM, customer_render, event_render, stripe_id_parse

# -- customers ---------------------------------------------------------------------------------
_ADDRESS = {"line1", "line2", "city", "state", "postal_code", "country"}
_CUSTOMER_PARAMS = {
    "name",
    "email",
    "description",
    "phone",
    "metadata",
    "address",
    "tax_exempt",
    "preferred_locales",
    "invoice_settings",
    "expand",
}


def _customer_fields(given: dict, current: dict | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, length in (("name", 256), ("email", 512), ("description", 350), ("phone", 20)):
        value = forms.read_str(given, name, max_length=length)
        if value is not None:
            fields[name] = value or None
    address = forms.read_hash(given, "address", _ADDRESS)
    if address is not None:
        fields["address"] = {key: address.get(key) for key in sorted(_ADDRESS)} if address else None
    tax_exempt = forms.read_enum(given, "tax_exempt", ("none", "exempt", "reverse"))
    if tax_exempt is not None:
        fields["tax_exempt"] = tax_exempt
    locales = forms.read_list(given, "preferred_locales")
    if locales is not None:
        fields["preferred_locales"] = locales
    settings = forms.read_hash(given, "invoice_settings", {"default_payment_method"})
    if settings is not None:
        fields["invoice_settings"] = {**((current or {}).get("invoice_settings") or {}), **settings}
    metadata = forms.read_metadata(given, (current or {}).get("metadata"))
    if metadata is not None:
        fields["metadata"] = metadata
    return fields


@idempotent_post
def customers_create(request: Request) -> Response:
    given = params(request)
    forms.params_unknown_check(given, _CUSTOMER_PARAMS | {"payment_method", "invoice_prefix"})
    fields = _customer_fields(given, None)
    prefix = forms.read_str(given, "invoice_prefix", max_length=12)
    if prefix is not None:
        if not (3 <= len(prefix) <= 12 and prefix.isalnum() and prefix.upper() == prefix):
            raise forms.invalid(
                "Invalid invoice_prefix: 3-12 uppercase letters or digits", param="invoice_prefix"
            )
        fields["invoice_prefix"] = prefix
    method = forms.read_str(given, "payment_method", max_length=255)
    if method:
        settings = fields.setdefault("invoice_settings", {})
        settings.setdefault("default_payment_method", method)
    record = services.customer_create(fields=fields, ref=request_ref(request))
    return Response.json(customer_render(record))


def customers_get(request: Request, customer_id: str) -> Response:
    record = services.object_get("customer", customer_id)
    return Response.json(customer_render(record))


@idempotent_post
def customers_update(request: Request, customer_id: str) -> Response:
    given = params(request)
    forms.params_unknown_check(given, _CUSTOMER_PARAMS)
    record = services.object_get("customer", customer_id)
    fields = _customer_fields(given, record.data)
    services.customer_update(record=record, changes=fields, ref=request_ref(request))
    return Response.json(customer_render(record))


def customers_delete(request: Request, customer_id: str) -> Response:
    record = services.object_get("customer", customer_id)
    services.customer_delete(record=record, ref=request_ref(request))
    return Response.json({"id": customer_id, "object": "customer", "deleted": True})


def customers_list(request: Request) -> Response:
    given = params(request)
    forms.params_unknown_check(given, LIST_PARAMS | {"email"})
    queryset = records("customer")
    email = forms.read_str(given, "email", max_length=512)
    if email is not None:
        queryset = queryset.filter(data__email=email)
    rows, more = list_page(
        request, queryset, object_name="customer", url="/v1/customers", given=given
    )
    return list_answer([customer_render(r) for r in rows], more, "/v1/customers")


# -- events ------------------------------------------------------------------------------------
def _pending(events: list[SandboxEvent]) -> dict[int, int]:
    counts = (
        SandboxWebhookDelivery.objects.using(SANDBOX_DB)
        .filter(event_id__in=[e.pk for e in events], delivered_at__isnull=True)
        .values("event_id")
        .annotate(n=Count("pk"))
    )
    return {row["event_id"]: row["n"] for row in counts}


def events_list(request: Request) -> Response:
    given = params(request)
    forms.params_unknown_check(given, LIST_PARAMS | {"type", "types", "delivery_success"})
    queryset = SandboxEvent.objects.using(SANDBOX_DB).filter(system=SYSTEM)
    kind = forms.read_str(given, "type")
    if kind is not None:
        queryset = (
            queryset.filter(action__startswith=kind[:-1])
            if kind.endswith("*")
            else queryset.filter(action=kind)
        )
    kinds = forms.read_list(given, "types")
    if kinds:
        queryset = queryset.filter(action__in=kinds)
    rows, more = list_page(
        request,
        queryset,
        object_name="event",
        url="/v1/events",
        given=given,
        created_field="occurred_at",
    )
    pending = _pending(rows)
    data = [event_render(e, pending_webhooks=pending.get(e.pk, 0)) for e in rows]
    return list_answer(data, more, "/v1/events")


def events_get(request: Request, event_id: str) -> Response:
    pk = stripe_id_parse(event_id, "event")
    event = (
        SandboxEvent.objects.using(SANDBOX_DB).filter(system=SYSTEM, pk=pk).first()
        if pk is not None
        else None
    )
    if event is None:
        raise services.no_such("event", event_id)
    return Response.json(event_render(event, pending_webhooks=_pending([event]).get(event.pk, 0)))


# -- webhook endpoints -------------------------------------------------------------------------
@idempotent_post
def endpoints_create(request: Request) -> Response:
    return webhooks.endpoint_create(request, params(request))


@idempotent_post
def endpoints_update(request: Request, endpoint_id: str) -> Response:
    return webhooks.endpoint_update(request, params(request), endpoint_id)
