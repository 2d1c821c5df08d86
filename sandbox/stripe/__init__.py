"""Stripe-style billing emulator: customers, invoice items, invoices, idempotency, webhooks."""

from __future__ import annotations

from sandbox.core.dialects import Dialect, Route
from sandbox.stripe import api, invoicing, views, webhooks

_ID = "{%s:[a-z]+_[0-9]+}"

DIALECT = Dialect(
    system="stripe",
    prefix="/stripe",
    routes=[
        Route("GET", "/v1/customers", views.customers_list),
        Route("POST", "/v1/customers", views.customers_create),
        Route("GET", "/v1/customers/" + _ID % "customer_id", views.customers_get),
        Route("POST", "/v1/customers/" + _ID % "customer_id", views.customers_update),
        Route("DELETE", "/v1/customers/" + _ID % "customer_id", views.customers_delete),
        Route("GET", "/v1/invoiceitems", invoicing.invoiceitems_list),
        Route("POST", "/v1/invoiceitems", invoicing.invoiceitems_create),
        Route("GET", "/v1/invoiceitems/" + _ID % "item_id", invoicing.invoiceitems_get),
        Route("DELETE", "/v1/invoiceitems/" + _ID % "item_id", invoicing.invoiceitems_delete),
        Route("GET", "/v1/invoices", invoicing.invoices_list),
        Route("POST", "/v1/invoices", invoicing.invoices_create),
        Route("GET", "/v1/invoices/" + _ID % "invoice_id", invoicing.invoices_get),
        Route("POST", "/v1/invoices/" + _ID % "invoice_id", invoicing.invoices_update),
        Route("DELETE", "/v1/invoices/" + _ID % "invoice_id", invoicing.invoices_delete),
        Route(
            "POST", "/v1/invoices/" + _ID % "invoice_id" + "/finalize", invoicing.invoices_finalize
        ),
        Route("POST", "/v1/invoices/" + _ID % "invoice_id" + "/pay", invoicing.invoices_pay),
        Route("POST", "/v1/invoices/" + _ID % "invoice_id" + "/void", invoicing.invoices_void),
        Route("GET", "/v1/invoices/" + _ID % "invoice_id" + "/lines", invoicing.invoices_lines),
        Route("GET", "/v1/events", views.events_list),
        Route("GET", "/v1/events/" + _ID % "event_id", views.events_get),
        Route("GET", "/v1/webhook_endpoints", webhooks.endpoints_list),
        Route("POST", "/v1/webhook_endpoints", views.endpoints_create),
        Route("GET", "/v1/webhook_endpoints/" + _ID % "endpoint_id", webhooks.endpoint_get),
        Route("POST", "/v1/webhook_endpoints/" + _ID % "endpoint_id", views.endpoints_update),
        Route("DELETE", "/v1/webhook_endpoints/" + _ID % "endpoint_id", webhooks.endpoint_delete),
    ],
    render_error=api.render_error,
    authenticate=api.authenticate,
    credentials=api.credentials,
    after_response=api.after_response,
    workers=(webhooks.WebhookDispatcher,),  # `sandbox serve` pushes due webhook deliveries
)
