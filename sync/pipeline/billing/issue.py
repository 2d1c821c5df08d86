"""Pending invoice candidates → one outbox delivery each that issues their invoice in billing.

A candidate is offered while it is pending and has no delivery of its current version. Its
customer must be known to billing and to the ERP (their ExternalRefs, made by customer
onboarding): otherwise it waits as a CUSTOMER_NOT_IN_BILLING exception item (billing queue,
money at risk = its amount), offered again every cycle, and the item closes when it goes.
The delivery (key `billing:billing.invoice.issue:<candidate>:v<version>`, so a second run
enqueues nothing) carries the invoice as Stripe takes it and the lines as Ledgerbridge records
them once billing confirms (`billing.issued`).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import transaction

from sync.integrations.stripe.invoices import (
    RECORD_TYPE,
    billing_invoice_body,
    billing_invoice_key,
)
from sync.models import Currency, Customer, ExternalRef, InvoiceCandidate
from sync.models.billing import InvoiceCandidateSource
from sync.money import to_minor_units
from sync.pipeline.billing.lines import SourceLine, lines_build
from sync.pipeline.exception_items import (
    Failure,
    exception_items_close_for,
    exception_items_raise,
)
from sync.pipeline.models import Connection, Delivery
from sync.pipeline.models.exception_items import Queue, Stage
from sync.pipeline.outbox.claims import deliveries_enqueue

OPERATION = "billing.invoice.issue"
CUSTOMER_MISSING = "CUSTOMER_NOT_IN_BILLING"


@dataclass
class IssueCounts:
    enqueued: int = 0
    waiting: int = 0  # customer not in billing or the ERP yet


def issue_key(candidate: InvoiceCandidate) -> str:
    return f"billing:{OPERATION}:{candidate.pk}:v{candidate.version}"


def candidate_record_key(candidate_id: int) -> str:
    """The exception-item record key of a candidate."""
    return f"billing:candidate:{candidate_id}"


def invoice_candidates_offer(
    *, billing: Connection, now: dt.datetime, run_id: int | None = None
) -> IssueCounts:
    """Enqueue the invoice of every pending candidate that has none yet, or park it while its
    customer is unknown to billing or the ERP. Idempotent. A fixed number of queries per call
    (candidates, their delivery keys, sources, customer refs, currencies), one transaction."""
    counts = IssueCounts()
    pending = list(
        InvoiceCandidate.objects.filter(status=InvoiceCandidate.Status.PENDING)
        .select_related("contract", "project")
        .order_by("id")
    )
    if not pending:
        return counts
    queued = set(
        Delivery.objects.filter(idempotency_key__in=[issue_key(c) for c in pending]).values_list(
            "idempotency_key", flat=True
        )
    )
    pending = [c for c in pending if issue_key(c) not in queued]
    if not pending:
        return counts
    sources: dict[int, list[SourceLine]] = defaultdict(list)
    for row in InvoiceCandidateSource.objects.filter(candidate__in=pending).order_by(
        "candidate_id", "line_key", "id"
    ):
        sources[row.candidate_id].append(
            SourceLine(row.line_key, row.description, row.quantity, row.unit_amount)
        )
    customer_ids = {c.contract.customer_id for c in pending}
    refs = _customer_refs(customer_ids)
    minor = dict(
        Currency.objects.filter(code__in={c.currency_id for c in pending}).values_list(
            "code", "minor_units"
        )
    )
    candidate_type = ContentType.objects.get_for_model(InvoiceCandidate)
    deliveries, failures, offered = [], [], []
    for candidate in pending:
        customer_id = candidate.contract.customer_id
        billing_id = refs.get((ExternalRef.System.BILLING, customer_id))
        erp_id = refs.get((ExternalRef.System.ERP, customer_id))
        if billing_id is None or erp_id is None:
            failures.append(_customer_missing(candidate, billing=billing_id, erp=erp_id))
            continue
        lines = lines_build(sources=sources[candidate.pk], minor_units=minor[candidate.currency_id])
        units = minor[candidate.currency_id]
        deliveries.append(
            Delivery(
                connection=billing,
                operation=OPERATION,
                content_type=candidate_type,
                object_id=str(candidate.pk),
                record_version=candidate.version,
                idempotency_key=issue_key(candidate),
                external_id=billing_invoice_key(candidate.pk),
                payload={
                    "record_type": RECORD_TYPE,
                    "body": billing_invoice_body(
                        customer=billing_id,
                        currency=candidate.currency_id,
                        description=_description(candidate),
                        lines=[(ln.description, to_minor_units(ln.amount, units)) for ln in lines],
                        metadata={
                            "candidate": str(candidate.pk),
                            "project": candidate.project.code,
                            "source_kind": candidate.source_kind,
                            "period": candidate.period_start.strftime("%Y-%m")
                            if candidate.period_start
                            else "",
                        },
                    ),
                    # What Ledgerbridge records once billing confirms (billing.issued).
                    "lines": [
                        {
                            "description": ln.description,
                            "quantity": str(ln.quantity),
                            "unit_amount": str(ln.unit_amount),
                            "amount": str(ln.amount),
                        }
                        for ln in lines
                    ],
                    "customer_id": customer_id,
                    "legal_entity_id": candidate.project.legal_entity_id,
                    "amount": str(candidate.amount),
                    "currency": candidate.currency_id,
                },
                next_attempt_at=now,
                correlation_id=candidate.correlation_id or f"candidate-{candidate.pk}",
            )
        )
        offered.append(candidate_record_key(candidate.pk))
    with transaction.atomic():
        counts.enqueued = deliveries_enqueue(deliveries=deliveries)
        exception_items_raise(failures=failures, run_id=run_id, now=now)
        if offered:
            exception_items_close_for(
                record_keys=offered,
                stage=Stage.VALIDATE,
                reason="The customer is in billing and the ERP now: the invoice is on its way.",
            )
    counts.waiting = len(failures)
    return counts


def _customer_refs(customer_ids: set[int]) -> dict[tuple[str, int], str]:
    customer_type = ContentType.objects.get_for_model(Customer)
    return {
        (system, int(object_id)): external_id
        for system, object_id, external_id in ExternalRef.objects.filter(
            system__in=[ExternalRef.System.BILLING, ExternalRef.System.ERP],
            content_type=customer_type,
            object_id__in=[str(pk) for pk in customer_ids],
            status=ExternalRef.Status.ACTIVE,
        ).values_list("system", "object_id", "external_id")
    }


def _description(candidate: InvoiceCandidate) -> str:
    project = candidate.project
    if candidate.period_start is None:
        return f"{project.code} {project.name}"
    return f"{project.code} {project.name}, {candidate.period_start:%B %Y}"


def _customer_missing(
    candidate: InvoiceCandidate, *, billing: str | None, erp: str | None
) -> Failure:
    missing = [name for name, ref in (("billing", billing), ("the ERP", erp)) if ref is None]
    return Failure(
        record_key=candidate_record_key(candidate.pk),
        stage=Stage.VALIDATE,
        queue=Queue.BILLING,
        code=CUSTOMER_MISSING,
        message=f"Invoice candidate {candidate.pk} ({candidate.source_kind}, "
        f"{candidate.amount} {candidate.currency_id}) waits: its customer is not in "
        f"{' or '.join(missing)} yet.",
        suggested_fix="Finish the customer's onboarding (customer master); the next cycle "
        "offers the candidate again by itself.",
        cause=f"customer:{candidate.contract.customer_id}",
        detail={"customer_id": candidate.contract.customer_id, "missing": missing},
        money_at_risk=candidate.amount,
        currency=candidate.currency_id,
        correlation_id=candidate.correlation_id,
    )
