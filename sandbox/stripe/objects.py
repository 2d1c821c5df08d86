"""Stripe objects of the sandbox: ids, and the JSON each API object renders as.

Record storage (`SandboxRecord`, system "stripe"):
- object_type "customer": data = name, email, description, phone, currency, address{},
  metadata{}, tax_exempt, invoice_prefix, invoice_settings{default_payment_method},
  next_invoice_sequence;
- object_type "invoiceitem": data = customer (cus_ id), amount, currency, description,
  quantity, unit_amount, period{start,end}, metadata{}, invoice (in_ id or null);
  parent_id = the customer's numeric id; status = the invoice's id, or "" while pending;
- object_type "invoice": data = customer (cus_ id), currency, status, collection_method,
  auto_advance, description, metadata{}, due_date, number, subtotal, total, amount_due,
  amount_paid, amount_remaining, attempt_count, attempted, paid_out_of_band,
  status_transitions{finalized_at, paid_at, voided_at, marked_uncollectible_at};
  parent_id = the customer's numeric id; status = draft / open / paid / void / uncollectible.
Ids are "<prefix>_" + the numeric id, zero-padded to 14 digits (cus_, ii_, in_, il_, evt_, we_);
`created` is the record's created_at.
"""

from __future__ import annotations

from typing import Any

from sandbox.models import SandboxEvent, SandboxRecord, SandboxWebhookSubscription
from sandbox.stripe.clock import timestamp

SYSTEM = "stripe"
API_VERSION = "2024-06-20"
PREFIXES = {
    "customer": "cus",
    "invoiceitem": "ii",
    "invoice": "in",
    "line_item": "il",
    "event": "evt",
    "webhook_endpoint": "we",
}
_ID_WIDTH = 14


def stripe_id(object_name: str, pk: int) -> str:
    return f"{PREFIXES[object_name]}_{pk:0{_ID_WIDTH}d}"


def stripe_id_parse(value: Any, object_name: str) -> int | None:
    """The numeric id of an id of this object, or None when it is not one."""
    prefix = PREFIXES[object_name] + "_"
    if not isinstance(value, str) or not value.startswith(prefix):
        return None
    digits = value[len(prefix) :]
    return int(digits) if digits.isdigit() and len(digits) <= 18 else None


def customer_ref(value: Any) -> Any:
    """A stored customer reference as its cus_ id (the generator stores the numeric id)."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return stripe_id("customer", int(value))
    return value


def customer_render(record: SandboxRecord) -> dict[str, Any]:
    data = record.data
    settings = data.get("invoice_settings") or {}
    return {
        "id": stripe_id("customer", record.pk),
        "object": "customer",
        "address": data.get("address"),
        "balance": 0,
        "created": timestamp(record.created_at),
        "currency": data.get("currency"),
        "default_source": None,
        "delinquent": False,
        "description": data.get("description"),
        "discount": None,
        "email": data.get("email"),
        "invoice_prefix": data.get("invoice_prefix"),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": settings.get("default_payment_method"),
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": data.get("metadata") or {},
        "name": data.get("name"),
        "next_invoice_sequence": data.get("next_invoice_sequence", 1),
        "phone": data.get("phone"),
        "preferred_locales": data.get("preferred_locales") or [],
        "shipping": None,
        "tax_exempt": data.get("tax_exempt", "none"),
        "test_clock": None,
    }


def invoiceitem_render(record: SandboxRecord) -> dict[str, Any]:
    data = record.data
    created = timestamp(record.created_at)
    unit_amount = data.get("unit_amount", data.get("amount"))
    return {
        "id": stripe_id("invoiceitem", record.pk),
        "object": "invoiceitem",
        "amount": data["amount"],
        "currency": data["currency"],
        "customer": customer_ref(data["customer"]),
        "date": created,
        "description": data.get("description"),
        "discountable": True,
        "invoice": data.get("invoice"),
        "livemode": False,
        "metadata": data.get("metadata") or {},
        "period": data.get("period") or {"start": created, "end": created},
        "proration": False,
        "quantity": data.get("quantity", 1),
        "test_clock": None,
        "unit_amount": unit_amount,
        "unit_amount_decimal": None if unit_amount is None else str(unit_amount),
    }


def line_render(item: SandboxRecord) -> dict[str, Any]:
    data = item.data
    created = timestamp(item.created_at)
    return {
        "id": stripe_id("line_item", item.pk),
        "object": "line_item",
        "amount": data["amount"],
        "currency": data["currency"],
        "description": data.get("description"),
        "discountable": True,
        "invoice": data.get("invoice"),
        "invoice_item": stripe_id("invoiceitem", item.pk),
        "livemode": False,
        "metadata": data.get("metadata") or {},
        "period": data.get("period") or {"start": created, "end": created},
        "proration": False,
        "quantity": data.get("quantity", 1),
        "type": "invoiceitem",
    }


def _embedded_lines(record: SandboxRecord) -> list[dict[str, Any]]:
    """Lines stored inside the invoice's data (as the generator writes invoices)."""
    embedded = (record.data.get("lines") or {}).get("data") or []
    invoice_id = stripe_id("invoice", record.pk)
    return [
        {
            "id": f"{stripe_id('line_item', record.pk)}_{n}",
            "object": "line_item",
            "discountable": True,
            "invoice": invoice_id,
            "livemode": False,
            "metadata": {},
            "proration": False,
            "type": "invoiceitem",
            **{k: v for k, v in line.items() if k != "object"},
        }
        for n, line in enumerate(embedded, start=1)
    ]


def lines_render(record: SandboxRecord, lines: list[SandboxRecord]) -> list[dict[str, Any]]:
    """All lines of an invoice: its invoice items, else the lines stored in its data."""
    return [line_render(item) for item in lines] or _embedded_lines(record)


def invoice_render(record: SandboxRecord, lines: list[SandboxRecord]) -> dict[str, Any]:
    """An invoice with its first 10 lines (`lines.has_more` says whether there are more)."""
    data = record.data
    invoice_id = stripe_id("invoice", record.pk)
    created = timestamp(record.created_at)
    rendered_lines = lines_render(record, lines)
    transitions = data.get("status_transitions") or {}
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Ledgerbridge Sandbox",
        "amount_due": data.get("amount_due", 0),
        "amount_paid": data.get("amount_paid", 0),
        "amount_remaining": data.get("amount_remaining", 0),
        "attempt_count": data.get("attempt_count", 0),
        "attempted": data.get("attempted", False),
        "auto_advance": data.get("auto_advance", False),
        "collection_method": data.get("collection_method", "charge_automatically"),
        "created": created,
        "currency": data["currency"],
        "customer": customer_ref(data["customer"]),
        "customer_email": data.get("customer_email"),
        "customer_name": data.get("customer_name"),
        "description": data.get("description"),
        "due_date": data.get("due_date"),
        "hosted_invoice_url": None,
        "lines": {
            "object": "list",
            "data": rendered_lines[:10],
            "has_more": len(rendered_lines) > 10,
            "total_count": len(rendered_lines),
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": data.get("metadata") or {},
        "number": data.get("number"),
        "paid": data.get("status") == "paid",
        "paid_out_of_band": data.get("paid_out_of_band", False),
        "period_end": data.get("period_end", created),
        "period_start": data.get("period_start", created),
        "status": data.get("status", "draft"),
        "status_transitions": {
            "finalized_at": transitions.get("finalized_at"),
            "marked_uncollectible_at": transitions.get("marked_uncollectible_at"),
            "paid_at": transitions.get("paid_at"),
            "voided_at": transitions.get("voided_at"),
        },
        "subtotal": data.get("subtotal", 0),
        "total": data.get("total", 0),
        "webhooks_delivered_at": None,
    }


def event_render(event: SandboxEvent, *, pending_webhooks: int = 0) -> dict[str, Any]:
    data = event.data
    return {
        "id": stripe_id("event", event.pk),
        "object": "event",
        "api_version": API_VERSION,
        "created": timestamp(event.occurred_at),
        "data": {"object": data.get("object", {})},
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": data.get("request") or {"id": None, "idempotency_key": None},
        "type": event.action,
    }


def endpoint_render(sub: SandboxWebhookSubscription, *, secret: bool) -> dict[str, Any]:
    rendered = {
        "id": stripe_id("webhook_endpoint", sub.pk),
        "object": "webhook_endpoint",
        "api_version": None,
        "application": None,
        "created": timestamp(sub.created_at),
        "description": None,
        "enabled_events": list(sub.event_types),
        "livemode": False,
        "metadata": {},
        "status": "enabled" if sub.active else "disabled",
        "url": sub.url,
    }
    if secret:
        rendered["secret"] = sub.secret
    return rendered
