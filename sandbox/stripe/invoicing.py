"""Stripe invoice items and invoices: create, read, list, update and delete drafts, and the
finalize / pay / void transitions (https://docs.stripe.com/api/invoices)."""

from __future__ import annotations

from typing import Any

from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.stripe import forms, services
from sandbox.stripe.api import (
    LIST_PARAMS,
    currency_clean,
    idempotent_post,
    list_answer,
    list_page,
    params,
    records,
    render_error,
    request_ref,
)
from sandbox.stripe.objects import (
    invoice_render,
    invoiceitem_render,
    lines_render,
    stripe_id,
    stripe_id_parse,
)

# -- invoice items -----------------------------------------------------------------------------
_ITEM_PARAMS = {
    "customer",
    "amount",
    "currency",
    "description",
    "metadata",
    "period",
    "quantity",
    "unit_amount",
    "invoice",
    "discountable",
    "expand",
}


@idempotent_post
def invoiceitems_create(request: Request) -> Response:
    given = params(request)
    forms.params_unknown_check(given, _ITEM_PARAMS)
    customer_id = forms.read_str(given, "customer", required=True)
    amount = forms.read_int(given, "amount")
    unit_amount = forms.read_int(given, "unit_amount")
    quantity = forms.read_int(given, "quantity", minimum=0)
    if amount is not None and unit_amount is not None:
        raise forms.invalid("You may only specify one of these parameters: amount, unit_amount.")
    if amount is None and unit_amount is None:
        raise forms.missing("amount")
    currency = currency_clean(forms.read_str(given, "currency"))
    description = forms.read_str(given, "description", max_length=5000)
    period = forms.read_hash(given, "period", {"start", "end"})
    metadata = forms.read_metadata(given) or {}
    invoice_id = forms.read_str(given, "invoice")
    forms.read_bool(given, "discountable")
    if period:
        period = {key: forms.read_int(period, key, required=True) for key in ("start", "end")}
    customer = services.object_get("customer", customer_id, param="customer", status=400)
    currency = currency or customer.data.get("currency")
    if currency is None:
        raise forms.missing("currency")
    if customer.data.get("currency") not in (None, currency):
        raise services.invalid(
            f"The currency {currency} does not match the customer's currency "
            f"{customer.data['currency']}.",
            param="currency",
        )
    invoice = None
    if invoice_id is not None:
        invoice = services.object_get(
            "invoice", invoice_id, param="invoice", status=400, for_update=True
        )
        if invoice.parent_id != customer.pk:
            raise services.invalid("The invoice belongs to another customer.", param="invoice")
        if invoice.data.get("status") != "draft":
            raise services.invalid(
                "You can only add invoice items to draft invoices.",
                param="invoice",
                code="invoice_not_editable",
            )
        if invoice.data.get("currency") != currency:
            raise services.invalid("The invoice has another currency.", param="currency")
    qty = quantity if quantity is not None else 1
    fields = {
        "amount": amount if amount is not None else unit_amount * qty,
        "unit_amount": unit_amount if unit_amount is not None else None,
        "quantity": qty,
        "currency": currency,
        "description": description,
        "metadata": metadata,
        "period": period or None,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    record = services.invoiceitem_create(
        customer=customer, invoice=invoice, fields=fields, ref=request_ref(request)
    )
    return Response.json(invoiceitem_render(record))


def invoiceitems_get(request: Request, item_id: str) -> Response:
    return Response.json(invoiceitem_render(services.object_get("invoiceitem", item_id)))


def invoiceitems_delete(request: Request, item_id: str) -> Response:
    record = services.object_get("invoiceitem", item_id)
    services.invoiceitem_delete(record=record, ref=request_ref(request))
    return Response.json({"id": item_id, "object": "invoiceitem", "deleted": True})


def invoiceitems_list(request: Request) -> Response:
    given = params(request)
    forms.params_unknown_check(given, LIST_PARAMS | {"customer", "invoice", "pending"})
    queryset = records("invoiceitem")
    customer = forms.read_str(given, "customer")
    if customer is not None:
        queryset = queryset.filter(parent_id=stripe_id_parse(customer, "customer") or -1)
    invoice = forms.read_str(given, "invoice")
    if invoice is not None:
        queryset = queryset.filter(status=invoice)
    pending = forms.read_bool(given, "pending")
    if pending is not None:
        queryset = queryset.filter(status="") if pending else queryset.exclude(status="")
    rows, more = list_page(
        request, queryset, object_name="invoiceitem", url="/v1/invoiceitems", given=given
    )
    return list_answer([invoiceitem_render(r) for r in rows], more, "/v1/invoiceitems")


# -- invoices ----------------------------------------------------------------------------------
_INVOICE_EDITABLE = {
    "auto_advance",
    "collection_method",
    "days_until_due",
    "due_date",
    "description",
    "metadata",
    "default_payment_method",
    "expand",
}


def _invoice_fields(given: dict, current: dict | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    auto_advance = forms.read_bool(given, "auto_advance")
    if auto_advance is not None:
        fields["auto_advance"] = auto_advance
    method = forms.read_enum(given, "collection_method", ("charge_automatically", "send_invoice"))
    if method is not None:
        fields["collection_method"] = method
    days = forms.read_int(given, "days_until_due", minimum=0, maximum=3650)
    if days is not None:
        fields["days_until_due"] = days
    due = forms.read_int(given, "due_date", minimum=0)
    if due is not None:
        fields["due_date"] = due
    description = forms.read_str(given, "description", max_length=1500)
    if description is not None:
        fields["description"] = description or None
    metadata = forms.read_metadata(given, (current or {}).get("metadata"))
    if metadata is not None:
        fields["metadata"] = metadata
    merged = {**(current or {}), **fields}
    collection = merged.get("collection_method", "charge_automatically")
    if (
        collection == "send_invoice"
        and merged.get("days_until_due") is None
        and merged.get("due_date") is None
    ):
        raise forms.missing("days_until_due")
    if collection == "charge_automatically" and (
        fields.get("days_until_due") is not None or fields.get("due_date") is not None
    ):
        raise forms.invalid(
            "Invoices with collection_method=charge_automatically cannot have a due date.",
            param="days_until_due" if "days_until_due" in fields else "due_date",
        )
    return fields


def _invoice_answer(record) -> Response:
    return Response.json(invoice_render(record, services.invoice_lines(record)))


@idempotent_post
def invoices_create(request: Request) -> Response:
    given = params(request)
    forms.params_unknown_check(
        given, _INVOICE_EDITABLE | {"customer", "currency", "pending_invoice_items_behavior"}
    )
    customer_id = forms.read_str(given, "customer", required=True)
    currency = currency_clean(forms.read_str(given, "currency"))
    behaviour = forms.read_enum(given, "pending_invoice_items_behavior", ("include", "exclude"))
    fields = _invoice_fields(given, None)
    fields.setdefault("collection_method", "charge_automatically")
    fields.setdefault("auto_advance", False)
    fields.setdefault("metadata", {})
    customer = services.object_get("customer", customer_id, param="customer", status=400)
    fields["currency"] = currency or customer.data.get("currency") or "usd"
    record = services.invoice_create(
        customer=customer,
        fields=fields,
        include_pending=behaviour == "include",
        ref=request_ref(request),
    )
    return _invoice_answer(record)


def invoices_get(request: Request, invoice_id: str) -> Response:
    return _invoice_answer(services.object_get("invoice", invoice_id))


@idempotent_post
def invoices_update(request: Request, invoice_id: str) -> Response:
    given = params(request)
    forms.params_unknown_check(given, _INVOICE_EDITABLE)
    invoice = services.object_get("invoice", invoice_id)
    fields = _invoice_fields(given, invoice.data)
    if invoice.data.get("status") != "draft" and set(fields) - {"metadata", "description"}:
        raise services.invalid(
            "Finalized invoices can only have their metadata and description updated.",
            code="invoice_not_editable",
        )
    services.invoice_update(invoice=invoice, changes=fields, ref=request_ref(request))
    return _invoice_answer(invoice)


def invoices_delete(request: Request, invoice_id: str) -> Response:
    invoice = services.object_get("invoice", invoice_id)
    if invoice.data.get("status") != "draft":
        raise services.invalid("You can only delete draft invoices.", code="invoice_not_editable")
    services.invoice_delete(invoice=invoice, ref=request_ref(request))
    return Response.json({"id": invoice_id, "object": "invoice", "deleted": True})


@idempotent_post
def invoices_finalize(request: Request, invoice_id: str) -> Response:
    given = params(request)
    forms.params_unknown_check(given, {"auto_advance", "expand"})
    auto_advance = forms.read_bool(given, "auto_advance")
    invoice = services.invoice_finalize(
        invoice_id=invoice_id, auto_advance=auto_advance, ref=request_ref(request)
    )
    return _invoice_answer(invoice)


@idempotent_post
def invoices_pay(request: Request, invoice_id: str) -> Response:
    given = params(request)
    forms.params_unknown_check(
        given, {"paid_out_of_band", "payment_method", "forgive", "off_session", "expand"}
    )
    out_of_band = bool(forms.read_bool(given, "paid_out_of_band"))
    forms.read_bool(given, "forgive")
    forms.read_bool(given, "off_session")
    method = forms.read_str(given, "payment_method", max_length=255)
    try:
        invoice = services.invoice_pay(
            invoice_id=invoice_id,
            paid_out_of_band=out_of_band,
            payment_method=method,
            ref=request_ref(request),
        )
    except services.PaymentDeclined as declined:
        # The failed attempt is committed; the 402 is an answer, not a rollback.
        error = SandboxError(
            402,
            declined.code,
            "Your card was declined."
            if declined.code == "card_declined"
            else "Your card has expired.",
            extra={
                "type": "card_error",
                "decline_code": declined.decline_code,
                "invoice": invoice_id,
            },
        )
        return render_error(request, error)
    return _invoice_answer(invoice)


@idempotent_post
def invoices_void(request: Request, invoice_id: str) -> Response:
    given = params(request)
    forms.params_unknown_check(given, {"expand"})
    return _invoice_answer(services.invoice_void(invoice_id=invoice_id, ref=request_ref(request)))


def invoices_lines(request: Request, invoice_id: str) -> Response:
    given = params(request)
    forms.params_unknown_check(given, LIST_PARAMS - {"created"})
    invoice = services.object_get("invoice", invoice_id)
    lines = lines_render(invoice, services.invoice_lines(invoice))
    limit = forms.read_int(given, "limit", minimum=1, maximum=100) or 10
    after = forms.read_str(given, "starting_after")
    if after is not None:
        ids = [line["id"] for line in lines]
        if after not in ids:
            raise services.no_such("line_item", after, param="starting_after", status=400)
        lines = lines[ids.index(after) + 1 :]
    url = f"/v1/invoices/{invoice_id}/lines"
    return list_answer(lines[:limit], len(lines) > limit, url)


def invoices_list(request: Request) -> Response:
    given = params(request)
    forms.params_unknown_check(given, LIST_PARAMS | {"customer", "status", "collection_method"})
    queryset = records("invoice")
    customer = forms.read_str(given, "customer")
    if customer is not None:
        queryset = queryset.filter(parent_id=stripe_id_parse(customer, "customer") or -1)
    status = forms.read_enum(given, "status", ("draft", "open", "paid", "uncollectible", "void"))
    if status is not None:
        queryset = queryset.filter(status=status)
    method = forms.read_enum(given, "collection_method", ("charge_automatically", "send_invoice"))
    if method is not None:
        queryset = queryset.filter(data__collection_method=method)
    rows, more = list_page(
        request, queryset, object_name="invoice", url="/v1/invoices", given=given
    )
    ids = [stripe_id("invoice", row.pk) for row in rows]
    lines: dict[str, list] = {invoice_id: [] for invoice_id in ids}
    for item in records("invoiceitem").filter(status__in=ids).order_by("pk"):
        lines[item.status].append(item)
    data = [invoice_render(row, lines[stripe_id("invoice", row.pk)]) for row in rows]
    return list_answer(data, more, "/v1/invoices")
