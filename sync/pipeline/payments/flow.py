"""The payments step of a cycle: cash applied where it arrives is carried to the other system.

`payments_follow_up` runs after the billing follow-up; the cycle sends what it enqueues. For
each open invoice Ledgerbridge issued that both billing and the ERP hold (decision 110):

1. paid in billing and collected by billing itself (not out of band) → a `Payment`
   (received, billing ref the billing invoice id) and one delivery `erp.payment.upsert` of the
   ERP customer payment `ST-PAY-<billing invoice id>` applying the invoice;
2. otherwise (open in billing, or paid there out of band): cash the ERP applied that no
   Payment accounts for → the customer's payments are listed and each new
   one read (its applications): a `Payment` per application (ERP ref `<payment>/<invoice>`);
   a partial one is applied at once. Once the ERP says nothing remains, one delivery
   `billing.payment.record` marks the billing invoice paid out of band, keyed by the ERP
   payment that paid it off.

The outbox's confirmation (`payments/recorded.py`) applies the Payments and pays the Invoice.
Never twice: the ERP payments Ledgerbridge made carry `ST-PAY-`, and billing invoices it marked
are paid out of band, so neither comes back as new cash. Reads are set-based (billing's paid
invoices, the ERP's invoices by id); per-record reads happen only where cash moved (decision 114).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from sync.audit import audited_bulk_create
from sync.connectors.base import TransportError
from sync.errors import PayloadError
from sync.integrations.netsuite import payments as erp_payments
from sync.integrations.registry import target_connector_for
from sync.integrations.stripe import payments as billing_payments
from sync.models import Currency, ExternalRef, Invoice, Payment
from sync.pipeline.billing.flow import billing_connection_get
from sync.pipeline.connection_services import erp_connection_get
from sync.pipeline.models import Connection, Delivery, SyncRun
from sync.pipeline.outbox.claims import deliveries_enqueue
from sync.pipeline.payments import rules
from sync.pipeline.payments.recorded import (
    BILLING_OPERATION,
    ERP_OPERATION,
    invoices_paid_record,
)

logger = logging.getLogger(__name__)

FLOW = "payments"  # its key in the cycle's counts per flow
OPEN = (Invoice.Status.OPEN, Invoice.Status.UNCOLLECTIBLE)
LIVE = (Payment.Status.RECEIVED, Payment.Status.APPLIED)
# Billing creates an invoice before Ledgerbridge records it: list paid ones from a day earlier.
CREATED_MARGIN = dt.timedelta(days=1)


@dataclass
class PaymentCounts:
    from_billing: int = 0  # payments billing collected, recorded and sent to the ERP
    from_erp: int = 0  # ERP payment applications recorded
    to_billing: int = 0  # billing invoices marked paid out of band
    read_errors: int = 0


def _refs(system: str, model: type, object_ids: list[str]) -> dict[str, str]:
    return dict(
        ExternalRef.objects.filter(
            system=system,
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=object_ids,
            status=ExternalRef.Status.ACTIVE,
        ).values_list("object_id", "external_id")
    )


def erp_payment_delivery_key(billing_invoice_id: str) -> str:
    return f"erp:{ERP_OPERATION}:{billing_invoice_id}"


def billing_payment_delivery_key(erp_payment_id: str, invoice_pk: int) -> str:
    return f"billing:{BILLING_OPERATION}:{erp_payment_id}:{invoice_pk}"


@dataclass
class _Settle:
    """What settling the invoices needs: the two connectors and connections, the cycle's
    counts, the actor and the time."""

    stripe: Any
    netsuite: Any
    billing: Connection
    erp: Connection
    minor: Mapping[str, int]
    counts: PaymentCounts
    actor: str
    now: dt.datetime


def payments_follow_up(
    *,
    run: SyncRun,
    now: dt.datetime | None = None,
    transport_for: Callable[[Connection], Any] | None = None,
) -> int:
    """Carry the payments of open invoices between billing and the ERP (module docstring).
    Idempotent: a second call records and enqueues nothing new. A read that fails
    (TransportError) or a record that cannot be read (PayloadError) leaves the rest to the
    next cycle (what was recorded stays). Returns how many deliveries it enqueued; adds its
    counts to `run.flow_counts["payments"]`."""
    now = now or timezone.now()
    billing, erp = billing_connection_get(), erp_connection_get()
    if billing is None or erp is None:
        return 0
    invoices = list(Invoice.objects.filter(status__in=OPEN, number__isnull=False).order_by("id"))
    keys = [str(i.pk) for i in invoices]
    billing_ids = _refs(ExternalRef.System.BILLING, Invoice, keys)
    erp_ids = _refs(ExternalRef.System.ERP, Invoice, keys)
    invoices = [i for i in invoices if str(i.pk) in billing_ids and str(i.pk) in erp_ids]
    if not invoices:
        return 0
    settle = _Settle(
        stripe=target_connector_for(
            billing, transport=transport_for(billing) if transport_for else None
        ),
        netsuite=target_connector_for(erp, transport=transport_for(erp) if transport_for else None),
        billing=billing,
        erp=erp,
        minor=rules.minor_units_by_code(Currency.objects.values_list("code", "minor_units")),
        counts=PaymentCounts(),
        actor=f"run:{run.pk}",
        now=now,
    )
    enqueued = 0
    try:
        enqueued = _invoices_settle(
            settle, invoices=invoices, billing_ids=billing_ids, erp_ids=erp_ids
        )
    except (TransportError, PayloadError) as exc:
        settle.counts.read_errors += 1
        logger.warning("payments not read: %s", exc)
    finally:
        settle.stripe.close()
        settle.netsuite.close()
    _counts_add(run, settle.counts)
    return enqueued


def _counts_add(run: SyncRun, counts: PaymentCounts) -> None:
    flows = getattr(run, "flow_counts", None)
    if flows is None:
        flows = run.flow_counts = {}
    mine = flows.setdefault(FLOW, {})
    for name, value in (
        ("collected in billing, to the ERP", counts.from_billing),
        ("applied in the ERP", counts.from_erp),
        ("marked paid in billing", counts.to_billing),
        ("not read", counts.read_errors),
    ):
        mine[name] = mine.get(name, 0) + value


def _invoices_settle(
    settle: _Settle,
    *,
    invoices: list[Invoice],
    billing_ids: dict[str, str],
    erp_ids: dict[str, str],
) -> int:
    """Two set-based reads (billing's paid invoices since the oldest open one, the ERP's
    invoices by id), then per invoice whose cash moved: record it and enqueue its delivery."""
    since = min(i.created_at for i in invoices) - CREATED_MARGIN
    wanted = set(billing_ids.values())
    paid = {
        found["id"]: billing_payments.billing_payment_read(found, minor_units=settle.minor)
        for found in settle.stripe.invoices_paid_list(created_from=since)
        if found.get("id") in wanted
    }
    enqueued = 0
    collected = set()
    for invoice in invoices:
        bill = paid.get(billing_ids[str(invoice.pk)])
        if bill is not None and bill.collected_by_billing:
            collected.add(invoice.pk)
            enqueued += _billing_collected(
                settle, invoice=invoice, paid=bill, erp_id=erp_ids[str(invoice.pk)]
            )
    # The rest: open in billing, or paid there out of band (by Ledgerbridge or the firm).
    rest = [i for i in invoices if i.pk not in collected]
    rows = settle.netsuite.invoices_read(ids=[erp_ids[str(i.pk)] for i in rest])
    recorded: dict[int, Decimal] = defaultdict(Decimal)
    for invoice_id, amount in Payment.objects.filter(invoice__in=rest, status__in=LIVE).values_list(
        "invoice_id", "amount"
    ):
        recorded[invoice_id] += amount
    for invoice in rest:
        row = rows.get(erp_ids[str(invoice.pk)])
        if row is None:
            continue  # not in the ERP's answer (deleted there): reconciliation reports it
        enqueued += _erp_cash_settle(
            settle,
            invoice=invoice,
            billing_id=billing_ids[str(invoice.pk)],
            erp_id=erp_ids[str(invoice.pk)],
            erp_row=row,
            recorded=recorded[invoice.pk],
            paid_out_of_band=paid.get(billing_ids[str(invoice.pk)]) is not None,
        )
    return enqueued


def _erp_cash_settle(
    settle: _Settle,
    *,
    invoice: Invoice,
    billing_id: str,
    erp_id: str,
    erp_row: Mapping[str, Any],
    recorded: Decimal,
    paid_out_of_band: bool,
) -> int:
    remaining = Decimal(str(erp_row.get("amountremaining") or 0))
    total = Decimal(str(erp_row.get("total") or invoice.total))
    paid_off = rules.billing_mark_due(remaining=remaining)
    new: list[Payment] = []
    if rules.erp_cash_unrecorded(total=total, remaining=remaining, recorded=recorded):
        new = _erp_applied_record(
            settle,
            invoice=invoice,
            erp_id=erp_id,
            customer=str(erp_row.get("entity") or ""),
            paid_off=paid_off,
        )
    if not paid_off or not (new or recorded):
        return 0
    if paid_out_of_band:
        # Billing holds it paid out of band already (the firm marked it there too): nothing to
        # send, the ERP's cash settles it here.
        with transaction.atomic():
            invoices_paid_record(invoice_ids={invoice.pk}, actor=settle.actor)
        return 0
    payment_ids = list(
        Payment.objects.filter(invoice=invoice, status__in=LIVE).values_list("pk", flat=True)
    )
    erp_refs = _refs(ExternalRef.System.ERP, Payment, [str(pk) for pk in payment_ids])
    last = max(
        (ref.split("/")[0] for ref in erp_refs.values()),
        key=lambda text: (len(text), text),
        default=None,
    )
    if last is None:
        return 0
    delivery = Delivery(
        connection=settle.billing,
        operation=BILLING_OPERATION,
        content_type=ContentType.objects.get_for_model(Invoice),
        object_id=str(invoice.pk),
        record_version=invoice.version,
        idempotency_key=billing_payment_delivery_key(last, invoice.pk),
        external_id=billing_id,
        payload={
            "record_type": billing_payments.RECORD_TYPE,
            "body": {"invoice": billing_id},
            "amount": str(invoice.total),
            "currency": invoice.currency_id,
        },
        next_attempt_at=settle.now,
        correlation_id=invoice.correlation_id or f"invoice-{invoice.pk}",
    )
    with transaction.atomic():
        new_deliveries = deliveries_enqueue(deliveries=[delivery])
    settle.counts.to_billing += new_deliveries
    return new_deliveries


def _billing_collected(
    settle: _Settle, *, invoice: Invoice, paid: billing_payments.BillingPayment, erp_id: str
) -> int:
    """Record the payment billing collected (once, by its billing ref) and enqueue its ERP
    customer payment (once, by its key)."""
    actor, now = settle.actor, settle.now
    payment_type = ContentType.objects.get_for_model(Payment)
    payments = list(invoice.payments.filter(status__in=LIVE))
    known = _refs(ExternalRef.System.BILLING, Payment, [str(p.pk) for p in payments])
    customer = _refs(ExternalRef.System.ERP, type(invoice.customer), [str(invoice.customer_id)])
    if not customer:
        return 0  # the invoice reached the ERP under it; a ref removed since waits
    with transaction.atomic():
        if paid.invoice_id in known.values():
            payment = next(p for p in payments if known.get(str(p.pk)) == paid.invoice_id)
        else:
            [payment] = audited_bulk_create(
                model=Payment,
                actor=actor,
                objs=[
                    Payment(
                        invoice=invoice,
                        amount=paid.amount_paid or invoice.total,
                        currency_id=invoice.currency_id,
                        received_date=paid.paid_on or timezone.localdate(now),
                        status=Payment.Status.RECEIVED,
                        correlation_id=invoice.correlation_id,
                    )
                ],
            )
            audited_bulk_create(
                model=ExternalRef,
                actor=actor,
                objs=[
                    ExternalRef(
                        system=ExternalRef.System.BILLING,
                        content_type=payment_type,
                        object_id=str(payment.pk),
                        external_id=paid.invoice_id,
                        last_synced_at=now,
                        correlation_id=invoice.correlation_id,
                    )
                ],
            )
        body = erp_payments.erp_payment_body(
            billing_invoice_id=paid.invoice_id,
            customer=customer[str(invoice.customer_id)],
            invoice=erp_id,
            tran_date=payment.received_date,
            amount=payment.amount,
            memo=f"Collected in billing: invoice {invoice.number}",
        )
        new = deliveries_enqueue(
            deliveries=[
                Delivery(
                    connection=settle.erp,
                    operation=ERP_OPERATION,
                    content_type=payment_type,
                    object_id=str(payment.pk),
                    record_version=payment.version,
                    idempotency_key=erp_payment_delivery_key(paid.invoice_id),
                    external_id=erp_payments.erp_payment_key(paid.invoice_id),
                    payload={
                        "record_type": erp_payments.RECORD_TYPE,
                        "body": body,
                        "amount": str(payment.amount),
                        "currency": payment.currency_id,
                    },
                    next_attempt_at=now,
                    correlation_id=invoice.correlation_id or f"invoice-{invoice.pk}",
                )
            ]
        )
    settle.counts.from_billing += new
    return new


def _erp_applied_record(
    settle: _Settle, *, invoice: Invoice, erp_id: str, customer: str, paid_off: bool
) -> list[Payment]:
    """Record the ERP's new applications to `invoice` as Payments (one GET per payment not
    recorded yet). Partial cash is applied at once; the payments that pay the invoice off wait
    as received for billing's confirmation. Returns the new Payments."""
    payment_type = ContentType.objects.get_for_model(Payment)
    recorded = set(
        ExternalRef.objects.filter(system=ExternalRef.System.ERP, content_type=payment_type)
        .filter(external_id__endswith=f"/{erp_id}")
        .values_list("external_id", flat=True)
    )
    seen = {ref.split("/")[0] for ref in recorded}
    fetched = [
        settle.netsuite.customer_payment_get(payment_id=payment_id)
        for payment_id in settle.netsuite.customer_payment_ids(customer=customer)
        if payment_id not in seen
    ]
    new = rules.erp_payments_new(payments=fetched, erp_invoice_id=erp_id, recorded_refs=recorded)
    if not new:
        return []
    status = Payment.Status.RECEIVED if paid_off else Payment.Status.APPLIED
    with transaction.atomic():
        created = audited_bulk_create(
            model=Payment,
            actor=settle.actor,
            objs=[
                Payment(
                    invoice=invoice,
                    amount=amount,
                    currency_id=invoice.currency_id,
                    received_date=payment.tran_date,
                    status=status,
                    correlation_id=invoice.correlation_id,
                )
                for payment, amount in new
            ],
        )
        audited_bulk_create(
            model=ExternalRef,
            actor=settle.actor,
            objs=[
                ExternalRef(
                    system=ExternalRef.System.ERP,
                    content_type=payment_type,
                    object_id=str(row.pk),
                    external_id=rules.erp_payment_ref(
                        payment_id=payment.payment_id, erp_invoice_id=erp_id
                    ),
                    last_synced_at=settle.now,
                    correlation_id=invoice.correlation_id,
                )
                for row, (payment, _amount) in zip(created, new, strict=True)
            ],
        )
    settle.counts.from_erp += len(created)
    return list(created)
