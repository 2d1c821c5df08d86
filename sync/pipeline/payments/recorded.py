"""What follows when a target confirms a payment delivery: the Payments are applied and the
Invoice is paid. Called by the outbox (sync.pipeline.outbox.outcomes) in the transaction that
records the deliveries as delivered, as billing's confirmations are."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.contrib.contenttypes.models import ContentType

from sync.audit import audited_bulk_create, audited_bulk_update
from sync.models import ExternalRef, Invoice, Payment
from sync.pipeline.models import Delivery
from sync.pipeline.payments import rules

ACTOR = "system:outbox"
ERP_OPERATION = "erp.payment.upsert"
BILLING_OPERATION = "billing.payment.record"
PAYABLE = (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE)


def payment_deliveries_record(
    *, delivered: Sequence[tuple[Delivery, str]], now: dt.datetime
) -> int:
    """ERP payments made (`erp.payment.upsert`): the Payment gets its ERP ref
    (`<payment>/<invoice>`) and is applied. Billing invoices marked paid
    (`billing.payment.record`): the invoice's received Payments are applied. Either way the
    Invoice → paid. All with history (actor `system:outbox`). Idempotent: what is applied or
    paid already is left alone. Returns how many invoices were paid."""
    payment_type = ContentType.objects.get_for_model(Payment).pk
    invoice_type = ContentType.objects.get_for_model(Invoice).pk
    to_erp = {
        int(d.object_id): target_id
        for d, target_id in delivered
        if target_id and d.operation == ERP_OPERATION and d.content_type_id == payment_type
    }
    to_billing = {
        int(d.object_id)
        for d, target_id in delivered
        if target_id and d.operation == BILLING_OPERATION and d.content_type_id == invoice_type
    }
    if not to_erp and not to_billing:
        return 0
    payments = list(
        Payment.objects.filter(pk__in=list(to_erp), status=Payment.Status.RECEIVED).select_related(
            "invoice"
        )
    )
    invoice_ids = {p.invoice_id for p in payments} | to_billing
    erp_invoices = dict(
        ExternalRef.objects.filter(
            system=ExternalRef.System.ERP,
            content_type_id=invoice_type,
            object_id__in=[str(pk) for pk in invoice_ids],
        ).values_list("object_id", "external_id")
    )
    linked = set(
        ExternalRef.objects.filter(
            system=ExternalRef.System.ERP,
            content_type_id=payment_type,
            object_id__in=[str(p.pk) for p in payments],
        ).values_list("object_id", flat=True)
    )
    audited_bulk_create(
        model=ExternalRef,
        actor=ACTOR,
        objs=[
            ExternalRef(
                system=ExternalRef.System.ERP,
                content_type_id=payment_type,
                object_id=str(p.pk),
                external_id=rules.erp_payment_ref(
                    payment_id=to_erp[p.pk], erp_invoice_id=erp_invoices.get(str(p.invoice_id), "")
                ),
                last_synced_at=now,
                correlation_id=p.correlation_id,
            )
            for p in payments
            if str(p.pk) not in linked
        ],
    )
    return invoices_paid_record(invoice_ids=invoice_ids, actor=ACTOR)


def invoices_paid_record(*, invoice_ids: set[int], actor: str) -> int:
    """The invoices' received Payments → applied, the open (or uncollectible) invoices → paid,
    with history (`actor`). Idempotent. Call inside a transaction. Returns how many invoices
    were paid."""
    payments = list(
        Payment.objects.filter(invoice_id__in=invoice_ids, status=Payment.Status.RECEIVED)
    )
    for payment in payments:
        payment.status = Payment.Status.APPLIED
    audited_bulk_update(model=Payment, objs=payments, fields=["status"], actor=actor)
    invoices = list(Invoice.objects.filter(pk__in=invoice_ids, status__in=PAYABLE))
    for invoice in invoices:
        invoice.status = Invoice.Status.PAID
    audited_bulk_update(model=Invoice, objs=invoices, fields=["status"], actor=actor)
    return len(invoices)
