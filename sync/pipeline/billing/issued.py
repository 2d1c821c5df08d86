"""What follows when billing confirms a candidate's invoice: the candidate is invoiced, the
invoice and its lines are recorded, and what it billed moves to invoiced.

Called by the outbox (sync.pipeline.outbox.outcomes) in the transaction that records the
deliveries as delivered, as time entries and expenses are moved to posted there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType

from sync.audit import audited_bulk_create, audited_bulk_update
from sync.integrations.stripe.invoices import RECORD_TYPE
from sync.models import (
    Expense,
    ExternalRef,
    Invoice,
    InvoiceCandidate,
    InvoiceLine,
    Milestone,
    TimeEntry,
    UsageRecord,
)
from sync.models.billing import InvoiceCandidateSource
from sync.models.transactions import ApprovalStatus
from sync.pipeline.models import Delivery

ACTOR = "system:outbox"
ERP_OPERATION = "erp.invoice.upsert"  # the ERP invoice deliveries (billing.erp_invoices)


def billing_deliveries_record(
    *, delivered: Sequence[tuple[Delivery, str]], now: dt.datetime
) -> None:
    """The outbox's hook: billing invoices issued, then ERP invoices posted."""
    billing_invoices_issued_record(delivered=delivered, now=now)
    erp_invoices_posted_record(delivered=delivered, now=now)


def erp_invoices_posted_record(
    *, delivered: Sequence[tuple[Delivery, str]], now: dt.datetime
) -> int:
    """Invoices the ERP now holds get their ERP ref (the NetSuite invoice's internal id), with
    history. Idempotent: an invoice already linked is skipped. Returns how many were linked."""
    invoice_type = ContentType.objects.get_for_model(Invoice).pk
    posted = {
        d.object_id: (d, target_id)
        for d, target_id in delivered
        if target_id and d.content_type_id == invoice_type and d.operation == ERP_OPERATION
    }
    if not posted:
        return 0
    linked = set(
        ExternalRef.objects.filter(
            system=ExternalRef.System.ERP, content_type_id=invoice_type, object_id__in=list(posted)
        ).values_list("object_id", flat=True)
    )
    refs = [
        ExternalRef(
            system=ExternalRef.System.ERP,
            content_type_id=invoice_type,
            object_id=object_id,
            external_id=target_id,
            last_synced_at=now,
            correlation_id=delivery.correlation_id,
        )
        for object_id, (delivery, target_id) in posted.items()
        if object_id not in linked
    ]
    audited_bulk_create(model=ExternalRef, actor=ACTOR, objs=refs)
    return len(refs)


def billing_invoices_issued_record(
    *, delivered: Sequence[tuple[Delivery, str]], now: dt.datetime
) -> int:
    """For each delivered `invoice` delivery of a candidate's current version, while the
    candidate is still pending: candidate → invoiced; an Invoice (a draft until its number and
    issue date are read back from billing, `billing.erp_invoices`) with its lines and a billing
    ref to the billing invoice id; its time entries and expenses posted → invoiced, its milestone
    completed → invoiced, its usage → invoiced. All with history (actor `system:outbox`).
    Idempotent: a second call finds the candidate invoiced and does nothing. Returns how many
    candidates moved. A fixed number of queries and bulk writes per call."""
    candidate_type = ContentType.objects.get_for_model(InvoiceCandidate).pk
    confirmed = {
        int(d.object_id): (d, target_id)
        for d, target_id in delivered
        if target_id
        and d.content_type_id == candidate_type
        and (d.payload or {}).get("record_type") == RECORD_TYPE
    }
    if not confirmed:
        return 0
    candidates = [
        c
        for c in InvoiceCandidate.objects.filter(
            pk__in=list(confirmed), status=InvoiceCandidate.Status.PENDING
        )
        if c.version == confirmed[c.pk][0].record_version
    ]
    if not candidates:
        return 0
    for candidate in candidates:
        candidate.status = InvoiceCandidate.Status.INVOICED
    audited_bulk_update(model=InvoiceCandidate, objs=candidates, fields=["status"], actor=ACTOR)
    invoices = audited_bulk_create(
        model=Invoice,
        actor=ACTOR,
        objs=[_invoice(c, confirmed[c.pk][0]) for c in candidates],
    )
    audited_bulk_create(
        model=InvoiceLine,
        actor=ACTOR,
        objs=[
            line
            for candidate, invoice in zip(candidates, invoices, strict=True)
            for line in _lines(candidate, invoice, confirmed[candidate.pk][0])
        ],
    )
    invoice_type = ContentType.objects.get_for_model(Invoice).pk
    audited_bulk_create(
        model=ExternalRef,
        actor=ACTOR,
        objs=[
            ExternalRef(
                system=ExternalRef.System.BILLING,
                content_type_id=invoice_type,
                object_id=str(invoice.pk),
                external_id=confirmed[candidate.pk][1],
                last_synced_at=now,
                correlation_id=candidate.correlation_id,
            )
            for candidate, invoice in zip(candidates, invoices, strict=True)
        ],
    )
    records_invoiced(candidate_ids=[c.pk for c in candidates], actor=ACTOR)
    return len(candidates)


def _invoice(candidate: InvoiceCandidate, delivery: Delivery) -> Invoice:
    # A draft: the number and issue date are set on the draft → open save (Invoice's contract).
    payload = delivery.payload
    return Invoice(
        customer_id=payload["customer_id"],
        legal_entity_id=payload["legal_entity_id"],
        currency_id=candidate.currency_id,
        total=candidate.amount,
        status=Invoice.Status.DRAFT,
        correlation_id=candidate.correlation_id,
    )


def _lines(candidate: InvoiceCandidate, invoice: Invoice, delivery: Delivery) -> list[InvoiceLine]:
    return [
        InvoiceLine(
            invoice=invoice,
            candidate=candidate,
            description=line["description"][:500],
            quantity=Decimal(line["quantity"]),
            unit_amount=Decimal(line["unit_amount"]),
            amount=Decimal(line["amount"]),
            currency_id=candidate.currency_id,
            tax_code_id=None,
            correlation_id=candidate.correlation_id,
        )
        for line in delivery.payload["lines"]
    ]


def records_invoiced(*, candidate_ids: list[int], actor: str) -> None:
    """Move what the candidates bill to invoiced, with history (`actor`). A record that left
    the expected status since it was linked (reversed, voided) keeps its status: its link still
    names the invoice, for the credit note it needs. Idempotent."""
    links = InvoiceCandidateSource.objects.filter(candidate_id__in=candidate_ids)
    moves = (
        (TimeEntry, "time_entry_id", [ApprovalStatus.POSTED], ApprovalStatus.INVOICED),
        (Expense, "expense_id", [ApprovalStatus.POSTED], ApprovalStatus.INVOICED),
        (Milestone, "milestone_id", [Milestone.Status.COMPLETED], Milestone.Status.INVOICED),
        (UsageRecord, "usage_record_id", [UsageRecord.Status.RATED], UsageRecord.Status.INVOICED),
    )
    # Usage is rated (priced) on the way: recorded → rated → invoiced, the transitions it has.
    usage_ids = links.filter(usage_record__isnull=False).values_list("usage_record_id", flat=True)
    recorded = list(
        UsageRecord.objects.filter(pk__in=usage_ids, status=UsageRecord.Status.RECORDED)
    )
    for record in recorded:
        record.status = UsageRecord.Status.RATED
    audited_bulk_update(model=UsageRecord, objs=recorded, fields=["status"], actor=actor)
    for model, link_field, before, after in moves:
        ids = links.filter(**{f"{link_field}__isnull": False}).values_list(link_field, flat=True)
        records = list(model.objects.filter(pk__in=ids, status__in=before))
        for record in records:
            record.status = after
        audited_bulk_update(model=model, objs=records, fields=["status"], actor=actor)
