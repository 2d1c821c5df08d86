"""Issued billing invoices → their number read back → one ERP invoice each, through the outbox.

1. `billing_invoices_number_learn`: a draft Invoice whose billing invoice was finalized gets the
   number, issue and due dates billing gave it and moves draft → open. Billing numbers an
   invoice when it finalizes it, and the outbox records only the invoice's id, so its number is
   read back by id (one GET per invoice issued since: the work scales with what changed;
   decision 104). An invoice billing still holds as a draft (a send cut off before its
   finalize) stays a draft here until its delivery's retry finalizes it.
2. `erp_invoices_offer`: every open invoice Ledgerbridge issued and the ERP does not hold yet
   → one delivery upserting the NetSuite invoice keyed by the number (lines, the customer's
   receivable, the project's job when known). Key `erp:erp.invoice.upsert:<id>:<number>`:
   a second run enqueues nothing, a resend or replay updates the same ERP invoice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import CharField, Exists, OuterRef
from django.db.models.functions import Cast
from django.utils import timezone

from sync.audit import audited_bulk_update
from sync.connectors.base import TransportError
from sync.integrations.netsuite import invoices as netsuite_invoices
from sync.integrations.netsuite.invoices import ErpInvoiceLine, erp_invoice_body
from sync.integrations.netsuite.time_bills import record_ref
from sync.integrations.registry import target_connector_for
from sync.models import Customer, ExternalRef, Invoice, InvoiceLine, Project
from sync.pipeline.billing.issued import ERP_OPERATION
from sync.pipeline.billing.lines import EXPENSE_LINE_PREFIX
from sync.pipeline.models import Connection, Delivery
from sync.pipeline.outbox.claims import deliveries_enqueue

logger = logging.getLogger(__name__)

OPERATION = ERP_OPERATION
ISSUED = (Invoice.Status.OPEN, Invoice.Status.PAID, Invoice.Status.UNCOLLECTIBLE)
# The ERP service item of a line, by what it bills (the billing model's words).
ITEMS = {
    "time": "Professional services",
    "milestone": "Fixed fee milestone",
    "usage": "Usage",
}
EXPENSE_ITEM = "Reimbursable expenses"


def _date(unix_seconds: Any) -> dt.date | None:
    if isinstance(unix_seconds, bool) or not isinstance(unix_seconds, int):
        return None
    return timezone.localdate(dt.datetime.fromtimestamp(unix_seconds, dt.UTC))


def billing_invoices_number_learn(
    *, billing: Connection, actor: str, transport: Any = None, now: dt.datetime | None = None
) -> int:
    """Read the number of every draft Invoice Ledgerbridge issued in billing and open it
    (with history, `actor`). Idempotent. A billing answer that fails (TransportError) stops the
    reading; what was read is kept and the rest is read next cycle. Returns how many opened."""
    now = now or timezone.now()
    invoice_type = ContentType.objects.get_for_model(Invoice)
    drafts = {
        str(i.pk): i for i in Invoice.objects.filter(status=Invoice.Status.DRAFT, number=None)
    }
    refs = dict(
        ExternalRef.objects.filter(
            system=ExternalRef.System.BILLING,
            content_type=invoice_type,
            object_id__in=list(drafts),
        ).values_list("object_id", "external_id")
    )
    if not refs:
        return 0
    opened = []
    connector = target_connector_for(billing, transport=transport)
    try:
        for object_id, billing_id in refs.items():
            try:
                found = connector.get(record_type="invoices", record_id=billing_id)
            except TransportError as exc:
                logger.warning("reading billing invoice %s failed: %s", billing_id, exc)
                break
            if not found or found.get("status") not in ISSUED or not found.get("number"):
                continue  # still a draft in billing: its delivery's retry finalizes it
            invoice = drafts[object_id]
            invoice.number = str(found["number"])
            finalized = (found.get("status_transitions") or {}).get("finalized_at")
            invoice.issue_date = _date(finalized) or timezone.localdate(now)
            invoice.due_date = max(
                _date(found.get("due_date")) or invoice.issue_date, invoice.issue_date
            )
            invoice.status = Invoice.Status.OPEN
            opened.append(invoice)
    finally:
        connector.close()
    audited_bulk_update(
        model=Invoice,
        objs=opened,
        fields=["number", "issue_date", "due_date", "status"],
        actor=actor,
    )
    return len(opened)


def erp_invoice_key(invoice: Invoice) -> str:
    return f"erp:{OPERATION}:{invoice.pk}:{invoice.number}"


def erp_invoices_offer(*, erp: Connection, now: dt.datetime) -> int:
    """Enqueue the ERP invoice of every issued invoice Ledgerbridge billed (its lines name a
    candidate) that the ERP does not hold yet and has no delivery. Idempotent. Returns how
    many were enqueued. A fixed number of queries: invoices, keys, lines, refs."""
    invoice_type = ContentType.objects.get_for_model(Invoice)
    in_erp = ExternalRef.objects.filter(
        system=ExternalRef.System.ERP,
        content_type=invoice_type,
        object_id=Cast(OuterRef("pk"), CharField()),
    )
    invoices = list(
        Invoice.objects.filter(status__in=ISSUED, number__isnull=False)
        .filter(Exists(InvoiceLine.objects.filter(invoice=OuterRef("pk"), candidate__isnull=False)))
        .exclude(Exists(in_erp))
        .order_by("id")
    )
    queued = set(
        Delivery.objects.filter(
            idempotency_key__in=[erp_invoice_key(i) for i in invoices]
        ).values_list("idempotency_key", flat=True)
    )
    invoices = [i for i in invoices if erp_invoice_key(i) not in queued]
    if not invoices:
        return 0
    lines: dict[int, list[InvoiceLine]] = defaultdict(list)
    projects: dict[int, int] = {}
    for line in (
        InvoiceLine.objects.filter(invoice__in=invoices, status=InvoiceLine.Status.ACTIVE)
        .select_related("candidate")
        .order_by("invoice_id", "id")
    ):
        lines[line.invoice_id].append(line)
        if line.candidate is not None:
            projects.setdefault(line.invoice_id, line.candidate.project_id)
    customers = _erp_ids(Customer, {i.customer_id for i in invoices})
    jobs = _erp_ids(Project, set(projects.values()))
    deliveries = []
    for invoice in invoices:
        customer = customers.get(invoice.customer_id)
        if customer is None:
            continue  # the candidate was offered only with one; an ERP ref removed since waits
        job = jobs.get(projects.get(invoice.pk))
        body = erp_invoice_body(
            number=invoice.number,
            customer={"id": customer},
            job=record_ref(internal_id=job, external_id="") if job else None,
            tran_date=invoice.issue_date,
            due_date=invoice.due_date,
            memo=f"Billing invoice {invoice.number}",
            lines=[_erp_line(line) for line in lines[invoice.pk]],
        )
        deliveries.append(
            Delivery(
                connection=erp,
                operation=OPERATION,
                content_type=ContentType.objects.get_for_model(Invoice),
                object_id=str(invoice.pk),
                record_version=invoice.version,
                idempotency_key=erp_invoice_key(invoice),
                external_id=invoice.number,
                payload={
                    "record_type": netsuite_invoices.RECORD_TYPE,
                    "body": body,
                    "amount": str(invoice.total),
                    "currency": invoice.currency_id,
                },
                next_attempt_at=now,
                correlation_id=invoice.correlation_id or f"invoice-{invoice.pk}",
            )
        )
    with transaction.atomic():
        return deliveries_enqueue(deliveries=deliveries)


def _erp_line(line: InvoiceLine) -> ErpInvoiceLine:
    kind = line.candidate.source_kind if line.candidate else "time"
    item = EXPENSE_ITEM if line.description.startswith(EXPENSE_LINE_PREFIX) else ITEMS.get(kind, "")
    return ErpInvoiceLine(
        item=item,
        description=line.description,
        quantity=line.quantity,
        rate=line.unit_amount,
        amount=line.amount,
    )


def _erp_ids(model: type, pks: set[int]) -> dict[int, str]:
    return {
        int(object_id): external_id
        for object_id, external_id in ExternalRef.objects.filter(
            system=ExternalRef.System.ERP,
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=[str(pk) for pk in pks],
            status=ExternalRef.Status.ACTIVE,
        ).values_list("object_id", "external_id")
    }
