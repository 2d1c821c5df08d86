"""Writes of the Stripe sandbox: customers, invoice items, invoices and their transitions, events.

Every write appends its Stripe event (`customer.created`, `invoice.finalized`…) in the same
transaction and queues one webhook delivery per enabled endpoint that listens for it, so that a
committed change is never missing from `GET /v1/events` or from the webhooks. Services take
already-validated values (see views.py); they raise `SandboxError` for a state Stripe refuses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from sandbox import storage
from sandbox.core.protocol import SandboxError
from sandbox.models import (
    SandboxEvent,
    SandboxRecord,
    SandboxWebhookDelivery,
    SandboxWebhookSubscription,
)
from sandbox.router import SANDBOX_DB
from sandbox.stripe import clock
from sandbox.stripe.objects import (
    SYSTEM,
    customer_render,
    invoice_render,
    invoiceitem_render,
    stripe_id,
    stripe_id_parse,
)

EVENT_TYPES = (
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "invoiceitem.created",
    "invoiceitem.deleted",
    "invoice.created",
    "invoice.updated",
    "invoice.deleted",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.voided",
)
# Stripe's test payment methods that decline: https://docs.stripe.com/testing#declined-payments
DECLINING_PAYMENT_METHODS = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_chargeCustomerFail": ("card_declined", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "insufficient_funds"),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", "expired_card"),
}


@dataclass(frozen=True)
class RequestRef:
    """What an event says about the API request that caused it."""

    id: str | None = None
    idempotency_key: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return {"id": self.id, "idempotency_key": self.idempotency_key}


class PaymentDeclined(Exception):
    """The charge of `invoice_pay` was declined; the failed attempt is already recorded."""

    def __init__(self, code: str, decline_code: str, invoice: SandboxRecord) -> None:
        super().__init__(decline_code)
        self.code = code
        self.decline_code = decline_code
        self.invoice = invoice


def invalid(message: str, *, param: str | None = None, code: str = "", status: int = 400):
    return SandboxError(status, code, message, fields=[param] if param else [])


def no_such(object_name: str, value: str, *, param: str = "id", status: int = 404):
    return invalid(
        f"No such {object_name}: '{value}'", param=param, code="resource_missing", status=status
    )


# -- events ------------------------------------------------------------------------------------
def event_emit(
    *,
    record: SandboxRecord,
    event_type: str,
    snapshot: dict[str, Any],
    ref: RequestRef,
    now: dt.datetime,
) -> SandboxEvent:
    """Append an event and queue its deliveries (call inside the write's transaction)."""
    event = SandboxEvent.objects.using(SANDBOX_DB).create(
        system=SYSTEM,
        object_type=record.object_type,
        record_id=record.pk,
        action=event_type,
        occurred_at=now,
        data={"object": snapshot, "request": ref.as_dict()},
    )
    subscriptions = SandboxWebhookSubscription.objects.using(SANDBOX_DB).filter(
        system=SYSTEM, active=True
    )
    deliveries = [
        SandboxWebhookDelivery(subscription=sub, event=event, next_attempt_at=now)
        for sub in subscriptions
        if "*" in sub.event_types or event_type in sub.event_types
    ]
    SandboxWebhookDelivery.objects.using(SANDBOX_DB).bulk_create(deliveries)
    return event


# -- reads -------------------------------------------------------------------------------------
def object_get(
    object_name: str, value: str, *, param: str = "id", status: int = 404, for_update: bool = False
) -> SandboxRecord:
    pk = stripe_id_parse(value, object_name)
    qs = storage.record_queryset(system=SYSTEM, object_type=object_name)
    if for_update:
        qs = qs.select_for_update()
    record = qs.filter(pk=pk).first() if pk is not None else None
    if record is None:
        raise no_such(object_name, value, param=param, status=status)
    return record


def invoice_customer(invoice: SandboxRecord, *, for_update: bool = False) -> SandboxRecord:
    """The invoice's customer, by the promoted parent_id (as the generator writes it too)."""
    qs = storage.record_queryset(system=SYSTEM, object_type="customer", include_deleted=True)
    if for_update:
        qs = qs.select_for_update()
    customer = qs.filter(pk=invoice.parent_id).first()
    if customer is None:
        raise no_such("customer", str(invoice.data.get("customer")), param="customer", status=400)
    return customer


def invoice_lines(invoice: SandboxRecord) -> list[SandboxRecord]:
    return list(
        storage.record_queryset(system=SYSTEM, object_type="invoiceitem")
        .filter(status=stripe_id("invoice", invoice.pk))
        .order_by("pk")
    )


def invoice_snapshot(invoice: SandboxRecord) -> dict[str, Any]:
    return invoice_render(invoice, invoice_lines(invoice))


# -- customers ---------------------------------------------------------------------------------
def _invoice_prefix(pk: int) -> str:
    return f"{(pk * 2654435761) % 16**8:08X}"


def customer_create(*, fields: dict[str, Any], ref: RequestRef) -> SandboxRecord:
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        record = storage.record_create(
            system=SYSTEM, object_type="customer", data=fields, now=now, event=False
        )
        record.data.setdefault("invoice_prefix", _invoice_prefix(record.pk))
        record.data["next_invoice_sequence"] = 1
        record.save(using=SANDBOX_DB, update_fields=["data"])
        event_emit(
            record=record,
            event_type="customer.created",
            snapshot=customer_render(record),
            ref=ref,
            now=now,
        )
    return record


def customer_update(*, record: SandboxRecord, changes: dict[str, Any], ref: RequestRef):
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        storage.record_update(record=record, changes=changes, now=now, event=False)
        event_emit(
            record=record,
            event_type="customer.updated",
            snapshot=customer_render(record),
            ref=ref,
            now=now,
        )
    return record


def customer_delete(*, record: SandboxRecord, ref: RequestRef) -> None:
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        record.deleted = True
        record.updated_at = now
        record.save(using=SANDBOX_DB, update_fields=["deleted", "updated_at"])
        event_emit(
            record=record,
            event_type="customer.deleted",
            snapshot=customer_render(record),
            ref=ref,
            now=now,
        )


# -- invoice items -----------------------------------------------------------------------------
def _totals(invoice: SandboxRecord) -> dict[str, int]:
    total = sum(item.data["amount"] for item in invoice_lines(invoice))
    return {"subtotal": total, "total": total, "amount_due": total, "amount_remaining": total}


def invoiceitem_create(
    *,
    customer: SandboxRecord,
    invoice: SandboxRecord | None,
    fields: dict[str, Any],
    ref: RequestRef,
) -> SandboxRecord:
    """An invoice item, pending (no invoice) or on a draft invoice of the same customer."""
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        currency = fields["currency"]
        if customer.data.get("currency") is None:
            storage.record_update(
                record=customer, changes={"currency": currency}, now=now, event=False
            )
        invoice_id = stripe_id("invoice", invoice.pk) if invoice is not None else None
        data = {**fields, "customer": stripe_id("customer", customer.pk), "invoice": invoice_id}
        record = storage.record_create(
            system=SYSTEM,
            object_type="invoiceitem",
            data=data,
            parent_id=customer.pk,
            status=invoice_id or "",
            now=now,
            event=False,
        )
        if invoice is not None:
            storage.record_update(record=invoice, changes=_totals(invoice), now=now, event=False)
        event_emit(
            record=record,
            event_type="invoiceitem.created",
            snapshot=invoiceitem_render(record),
            ref=ref,
            now=now,
        )
    return record


def invoiceitem_delete(*, record: SandboxRecord, ref: RequestRef) -> None:
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        invoice = None
        if record.data.get("invoice"):
            invoice = object_get("invoice", record.data["invoice"], for_update=True)
            if invoice.data.get("status") != "draft":
                raise invalid(
                    "You can only delete invoice items that are pending or on a draft invoice.",
                    code="invoice_not_editable",
                )
        record.deleted = True
        record.save(using=SANDBOX_DB, update_fields=["deleted"])
        if invoice is not None:
            storage.record_update(record=invoice, changes=_totals(invoice), now=now, event=False)
        event_emit(
            record=record,
            event_type="invoiceitem.deleted",
            snapshot=invoiceitem_render(record),
            ref=ref,
            now=now,
        )


# -- invoices ----------------------------------------------------------------------------------
def invoice_create(
    *, customer: SandboxRecord, fields: dict[str, Any], include_pending: bool, ref: RequestRef
) -> SandboxRecord:
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        data = {
            "customer": stripe_id("customer", customer.pk),
            "customer_email": customer.data.get("email"),
            "customer_name": customer.data.get("name"),
            "status": "draft",
            "subtotal": 0,
            "total": 0,
            "amount_due": 0,
            "amount_paid": 0,
            "amount_remaining": 0,
            "attempt_count": 0,
            "attempted": False,
            **fields,
        }
        record = storage.record_create(
            system=SYSTEM,
            object_type="invoice",
            data=data,
            parent_id=customer.pk,
            status="draft",
            now=now,
            event=False,
        )
        if include_pending:
            invoice_id = stripe_id("invoice", record.pk)
            pending = storage.record_queryset(system=SYSTEM, object_type="invoiceitem").filter(
                parent_id=customer.pk, status="", data__currency=data["currency"]
            )
            for item in pending.select_for_update():
                storage.record_update(
                    record=item,
                    changes={"invoice": invoice_id},
                    status=invoice_id,
                    now=now,
                    event=False,
                )
            storage.record_update(record=record, changes=_totals(record), now=now, event=False)
        event_emit(
            record=record,
            event_type="invoice.created",
            snapshot=invoice_snapshot(record),
            ref=ref,
            now=now,
        )
    return record


def invoice_update(*, invoice: SandboxRecord, changes: dict[str, Any], ref: RequestRef):
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        storage.record_update(record=invoice, changes=changes, now=now, event=False)
        event_emit(
            record=invoice,
            event_type="invoice.updated",
            snapshot=invoice_snapshot(invoice),
            ref=ref,
            now=now,
        )
    return invoice


def invoice_delete(*, invoice: SandboxRecord, ref: RequestRef) -> None:
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        snapshot = invoice_snapshot(invoice)
        for item in invoice_lines(invoice):
            storage.record_update(
                record=item, changes={"invoice": None}, status="", now=now, event=False
            )
        invoice.deleted = True
        invoice.save(using=SANDBOX_DB, update_fields=["deleted"])
        event_emit(
            record=invoice, event_type="invoice.deleted", snapshot=snapshot, ref=ref, now=now
        )


def _state_error(invoice: SandboxRecord, action: str) -> SandboxError:
    status = invoice.data.get("status")
    return invalid(
        f"You cannot {action} this invoice because it has a status of {status}.",
        code="invoice_unexpected_state",
    )


def _transition(
    invoice: SandboxRecord,
    changes: dict[str, Any],
    status: str,
    now: dt.datetime,
    stamps: dict[str, int],
) -> None:
    transitions = {**(invoice.data.get("status_transitions") or {}), **stamps}
    storage.record_update(
        record=invoice,
        changes={**changes, "status": status, "status_transitions": transitions},
        status=status,
        now=now,
        event=False,
    )


def invoice_finalize(*, invoice_id: str, auto_advance: bool | None, ref: RequestRef):
    """draft -> open (or paid when the total is zero), with the customer's next invoice number."""
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        invoice = object_get("invoice", invoice_id, for_update=True)
        if invoice.data.get("status") != "draft":
            raise invalid(
                "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
                code="invoice_unexpected_state",
            )
        # The customer row is the lock behind the per-customer invoice number sequence.
        customer = invoice_customer(invoice, for_update=True)
        sequence = customer.data.get("next_invoice_sequence", 1)
        storage.record_update(
            record=customer, changes={"next_invoice_sequence": sequence + 1}, now=now, event=False
        )
        totals = _totals(invoice)
        changes: dict[str, Any] = {
            **totals,
            "number": f"{customer.data['invoice_prefix']}-{sequence:04d}",
        }
        if auto_advance is not None:
            changes["auto_advance"] = auto_advance
        days = invoice.data.get("days_until_due")
        if invoice.data.get("due_date") is None and days is not None:
            changes["due_date"] = clock.timestamp(now) + int(days) * 86400
        stamp = clock.timestamp(now)
        if totals["total"] <= 0:
            changes.update(amount_remaining=0, amount_paid=0)
            _transition(invoice, changes, "paid", now, {"finalized_at": stamp, "paid_at": stamp})
            events = ("invoice.finalized", "invoice.paid", "invoice.payment_succeeded")
        else:
            _transition(invoice, changes, "open", now, {"finalized_at": stamp})
            events = ("invoice.finalized",)
        snapshot = invoice_snapshot(invoice)
        for event_type in events:
            event_emit(record=invoice, event_type=event_type, snapshot=snapshot, ref=ref, now=now)
    return invoice


def invoice_pay(
    *, invoice_id: str, paid_out_of_band: bool, payment_method: str | None, ref: RequestRef
) -> SandboxRecord:
    """open -> paid. A declining test payment method records the failed attempt (committed) and
    raises PaymentDeclined."""
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        invoice = object_get("invoice", invoice_id, for_update=True)
        if invoice.data.get("status") != "open":
            if invoice.data.get("status") == "paid":
                raise invalid("Invoice is already paid", code="invoice_unexpected_state")
            raise _state_error(invoice, "pay")
        stamp = clock.timestamp(now)
        if not paid_out_of_band:
            customer = invoice_customer(invoice)
            method = payment_method or (customer.data.get("invoice_settings") or {}).get(
                "default_payment_method"
            )
            if not method:
                raise invalid(
                    "This customer has no attached payment source or default payment method. "
                    "Please consider adding a default payment method.",
                    code="invoice_no_customer_payment_source",
                )
            attempts = invoice.data.get("attempt_count", 0) + 1
            if method in DECLINING_PAYMENT_METHODS:
                storage.record_update(
                    record=invoice,
                    changes={"attempt_count": attempts, "attempted": True},
                    now=now,
                    event=False,
                )
                event_emit(
                    record=invoice,
                    event_type="invoice.payment_failed",
                    snapshot=invoice_snapshot(invoice),
                    ref=ref,
                    now=now,
                )
                code, decline = DECLINING_PAYMENT_METHODS[method]
                declined = PaymentDeclined(code, decline, invoice)
            else:
                declined = None
            if declined is None:
                changes = {"attempt_count": attempts, "attempted": True}
        else:
            declined = None
            changes = {"paid_out_of_band": True}
        if declined is None:
            changes.update(amount_paid=invoice.data.get("amount_due", 0), amount_remaining=0)
            _transition(invoice, changes, "paid", now, {"paid_at": stamp})
            snapshot = invoice_snapshot(invoice)
            for event_type in ("invoice.paid", "invoice.payment_succeeded"):
                event_emit(
                    record=invoice, event_type=event_type, snapshot=snapshot, ref=ref, now=now
                )
    if declined is not None:
        raise declined
    return invoice


def invoice_void(*, invoice_id: str, ref: RequestRef) -> SandboxRecord:
    now = clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        invoice = object_get("invoice", invoice_id, for_update=True)
        if invoice.data.get("status") not in {"open", "uncollectible"}:
            raise _state_error(invoice, "void")
        _transition(
            invoice, {"amount_remaining": 0}, "void", now, {"voided_at": clock.timestamp(now)}
        )
        event_emit(
            record=invoice,
            event_type="invoice.voided",
            snapshot=invoice_snapshot(invoice),
            ref=ref,
            now=now,
        )
    return invoice
