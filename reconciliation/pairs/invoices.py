"""Pair "invoices": billing's invoices, read through the billing API's list (what billing holds
now, not Ledgerbridge's canonical rows), against the ERP's invoices read through SuiteQL.

Matched on the billing invoice number: the ERP invoice's externalId (how Ledgerbridge and the
firm post them, sync/integrations/netsuite/invoices.py); an ERP invoice without one is
attributed by its otherRefNum, the number as a person keys it in (a second invoice for one
billing invoice is a duplicate). Drafts carry no number and are nothing the ERP should hold:
not staged. Compared: the total in the currency's minor units, the currency, and status —
live (open, paid, uncollectible; ERP open or paid in full) or void. Whether an invoice is paid
is the "payments" pair's question, not this one's (decision 117).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Min
from django.utils import timezone

from reconciliation.pairs.base import Explaining, Pair, Row, Scope, minor_units
from sync.integrations.netsuite import invoices as erp_invoices
from sync.integrations.netsuite import reconcile_reads as netsuite_reads
from sync.integrations.stripe import reconcile_reads as stripe_reads
from sync.models import Currency, Invoice, Project
from sync.pipeline.models.exception_items import Queue

NAME = "invoices"
LIVE = "live"
VOID = "void"
BILLING_VOID = "void"
ERP_VOID = "V"  # NetSuite invoice status "Voided"
# Billing's record keys (sync/pipeline/billing/history.py: billing, invoice, by Stripe id).
SOURCE_RECORD_PREFIX = "billing:invoice:"


def decimal_read(value: Any) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def issued_on(invoice: dict[str, Any]) -> str:
    """The ISO date billing issued the invoice on (finalized; else created), in the firm's
    time zone, as the ERP invoice's transaction date is (sync/pipeline/billing/erp_invoices)."""
    stamp = (invoice.get("status_transitions") or {}).get("finalized_at") or invoice.get("created")
    if isinstance(stamp, bool) or not isinstance(stamp, int):
        return ""
    return timezone.localdate(dt.datetime.fromtimestamp(stamp, dt.UTC)).isoformat()


class Places:
    """Where an invoice belongs (project, legal entity) and its canonical Invoice, from a fixed
    number of queries."""

    def __init__(self) -> None:
        self.by_code = {
            code: (pk, entity)
            for code, pk, entity in Project.objects.values_list("code", "id", "legal_entity_id")
        }
        self.canonical = {
            number: (pk, project, entity)
            for number, pk, project, entity in Invoice.objects.filter(number__isnull=False)
            .annotate(project=Min("lines__candidate__project_id"))
            .values_list("number", "pk", "project", "legal_entity_id")
        }

    def of(self, *, number: str, project_code: str) -> tuple[int | None, int | None, int | None]:
        """(canonical invoice pk, project pk, legal entity pk), each None when unknown."""
        record, project, entity = self.canonical.get(number, (None, None, None))
        if project_code in self.by_code:
            project, entity = self.by_code[project_code]
        return record, project, entity


def source_rows(scope: Scope, connector: Any) -> Iterator[list[Row]]:
    """Billing's numbered invoices in scope, page by page as its list answers."""
    places = Places()
    for page in stripe_reads.invoices_pages(connector):
        rows = []
        for invoice in page:
            number = invoice.get("number")
            if not isinstance(number, str) or not number:
                continue  # a draft: nothing the ERP should hold yet
            day = issued_on(invoice)
            if scope.period and day[:7] != scope.period:
                continue
            metadata = invoice.get("metadata") or {}
            code = metadata.get("project_key") if isinstance(metadata, dict) else None
            record, project, entity = places.of(number=number, project_code=str(code or ""))
            if not scope.keeps(legal_entity_id=entity, project_id=project):
                continue
            currency = str(invoice.get("currency") or "").upper()
            total = invoice.get("total")
            live = invoice.get("status") != BILLING_VOID
            rows.append(
                Row(
                    key=number,
                    match=number,
                    external_id=str(invoice["id"]),
                    required=live,
                    status=LIVE if live else VOID,
                    quantity=None,
                    # Stripe's amounts are already in the currency's minor units.
                    amount=total
                    if isinstance(total, int) and not isinstance(total, bool)
                    else None,
                    currency=currency,
                    period=day[:7],
                    legal_entity_id=entity,
                    project_id=project,
                    record_id=record,
                    approved_at=None,
                )
            )
        yield rows


def target_rows(scope: Scope, connector: Any) -> Iterator[list[Row]]:
    """The ERP's invoices in the scope's period, through SuiteQL page by page."""
    digits = dict(Currency.objects.values_list("code", "minor_units"))
    places = Places()
    symbols = netsuite_reads.currencies(connector)
    jobs = netsuite_reads.jobs_currency(connector)
    date_from, date_to = scope.dates
    for page in netsuite_reads.invoices_pages(connector, date_from=date_from, date_to=date_to):
        rows = []
        for invoice in page:
            external = str(invoice.get("externalid") or "")
            typed = str(invoice.get("otherrefnum") or "")
            code, _ = jobs.get(str(invoice.get("job") or ""), ("", ""))
            _, project, entity = places.of(number=external or typed, project_code=code)
            if not scope.keeps(legal_entity_id=entity, project_id=project):
                continue
            currency = symbols.get(str(invoice.get("currency") or ""), "")
            total = decimal_read(invoice.get("total"))
            live = str(invoice.get("status") or "") != ERP_VOID
            rows.append(
                Row(
                    key=external or None,
                    match=typed,
                    external_id=str(invoice["id"]),
                    required=live,
                    status=LIVE if live else VOID,
                    quantity=None,
                    amount=None
                    if total is None
                    else minor_units(total, digits=digits.get(currency, 2)),
                    currency=currency,
                    period=str(invoice.get("trandate") or "")[:7],
                    legal_entity_id=entity,
                    project_id=project,
                    record_id=None,
                    approved_at=None,
                )
            )
        yield rows


def explaining(breaks: list[tuple[str, list[str]]]) -> list[Explaining]:
    return [
        Explaining(
            record_keys=([f"{SOURCE_RECORD_PREFIX}{source}"] if source else [])
            + [f"erp:{erp_invoices.RECORD_TYPE}:{t}" for t in targets],
        )
        for source, targets in breaks
    ]


PAIR = Pair(
    name=NAME,
    label="Billing invoices ↔ ERP invoices",
    source_rows=source_rows,
    source_system="billing",
    target_rows=target_rows,
    target_system="erp",
    queue=Queue.BILLING,
    explaining=explaining,
    money=True,
    delivery_model=Invoice,
    attribute=True,
    fixes={
        "missing_in_target": "Billing issued this invoice but the ERP holds none under its "
        "number (deleted, or never posted). Retry the invoice's ERP delivery from this item "
        "(an upsert by the number: it cannot post twice), or post it in the ERP.",
        "missing_in_source": "The ERP holds a live invoice under a number billing does not "
        "know. Void it in the ERP, or find the billing invoice it stands for.",
        "duplicate": "The ERP holds more than one invoice for this billing invoice: the "
        "customer is billed twice. Void the one that does not carry the number as its "
        "external id.",
        "amount_mismatch": "The ERP invoice's total or currency differs from billing's (a line "
        "edited in the ERP). Retry the ERP delivery to restore billing's lines, or credit the "
        "difference in the ERP.",
        "status_mismatch": "Billing voided this invoice but the ERP still holds it open (or the "
        "other way round). Void the ERP invoice, or re-issue the invoice in billing.",
    },
)
