"""Pair "payments": the cash the ERP has applied to each invoice (its receivable, closed by
customer payments) against what billing says was paid on it, both read through their APIs.

Per invoice, matched on the billing invoice number (the ERP invoice's externalId). Compared: the
amount paid, in the currency's minor units — in the ERP the invoice's total less its amount
remaining (what the customer payments applied to it add up to; NetSuite keeps it as payments are
applied or deleted), in billing the invoice's `amount_paid`. Statuses are not compared: "paid"
follows from the amount, and one cause should raise one break, not two (decision 118). Void and
draft invoices are the "invoices" pair's question and are left out; an invoice with no cash on
either side needs no counterpart here. Ledgerbridge delivers no payment, so nothing replays.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from reconciliation.pairs.base import Explaining, Pair, Row, Scope, minor_units
from reconciliation.pairs.invoices import (
    BILLING_VOID,
    ERP_VOID,
    SOURCE_RECORD_PREFIX,
    Places,
    decimal_read,
    issued_on,
)
from sync.integrations.netsuite import invoices as erp_invoices
from sync.integrations.netsuite import reconcile_reads as netsuite_reads
from sync.integrations.stripe import reconcile_reads as stripe_reads
from sync.models import Currency
from sync.pipeline.models.exception_items import Queue

NAME = "payments"


def _row(
    *,
    key: str,
    external_id: str,
    paid: int | None,
    currency: str,
    period: str,
    place: tuple[int | None, int | None, int | None],
) -> Row:
    _, project, entity = place
    return Row(
        key=key,
        match="",
        external_id=external_id,
        required=bool(paid),
        status="",
        quantity=None,
        amount=paid,
        currency=currency,
        period=period,
        legal_entity_id=entity,
        project_id=project,
        record_id=None,
        approved_at=None,
    )


def source_rows(scope: Scope, connector: Any) -> Iterator[list[Row]]:
    """The ERP's invoices under a billing number in scope, with the cash applied to each."""
    digits = dict(Currency.objects.values_list("code", "minor_units"))
    places = Places()
    symbols = netsuite_reads.currencies(connector)
    jobs = netsuite_reads.jobs_currency(connector)
    date_from, date_to = scope.dates
    for page in netsuite_reads.invoices_pages(connector, date_from=date_from, date_to=date_to):
        rows = []
        for invoice in page:
            number = str(invoice.get("externalid") or "")
            if not number or str(invoice.get("status") or "") == ERP_VOID:
                continue
            code, _ = jobs.get(str(invoice.get("job") or ""), ("", ""))
            place = places.of(number=number, project_code=code)
            if not scope.keeps(legal_entity_id=place[2], project_id=place[1]):
                continue
            currency = symbols.get(str(invoice.get("currency") or ""), "")
            total = decimal_read(invoice.get("total"))
            remaining = decimal_read(invoice.get("amountremaining"))
            paid = (
                None
                if total is None
                else minor_units(total - (remaining or 0), digits=digits.get(currency, 2))
            )
            rows.append(
                _row(
                    key=number,
                    external_id=str(invoice["id"]),
                    paid=paid,
                    currency=currency,
                    period=str(invoice.get("trandate") or "")[:7],
                    place=place,
                )
            )
        yield rows


def target_rows(scope: Scope, connector: Any) -> Iterator[list[Row]]:
    """Billing's numbered, non-void invoices in scope, with what billing says was paid."""
    places = Places()
    for page in stripe_reads.invoices_pages(connector):
        rows = []
        for invoice in page:
            number = invoice.get("number")
            if not isinstance(number, str) or not number or invoice.get("status") == BILLING_VOID:
                continue
            day = issued_on(invoice)
            if scope.period and day[:7] != scope.period:
                continue
            metadata = invoice.get("metadata") or {}
            code = metadata.get("project_key") if isinstance(metadata, dict) else None
            place = places.of(number=number, project_code=str(code or ""))
            if not scope.keeps(legal_entity_id=place[2], project_id=place[1]):
                continue
            paid = invoice.get("amount_paid")
            rows.append(
                _row(
                    key=number,
                    external_id=str(invoice["id"]),
                    # Stripe's amounts are already in the currency's minor units.
                    paid=paid if isinstance(paid, int) and not isinstance(paid, bool) else None,
                    currency=str(invoice.get("currency") or "").upper(),
                    period=day[:7],
                    place=place,
                )
            )
        yield rows


def explaining(breaks: list[tuple[str, list[str]]]) -> list[Explaining]:
    return [
        Explaining(
            record_keys=([f"erp:{erp_invoices.RECORD_TYPE}:{source}"] if source else [])
            + [f"{SOURCE_RECORD_PREFIX}{t}" for t in targets],
        )
        for source, targets in breaks
    ]


PAIR = Pair(
    name=NAME,
    label="ERP cash applied ↔ billing paid status",
    source_rows=source_rows,
    source_system="erp",
    target_rows=target_rows,
    target_system="billing",
    queue=Queue.BILLING,
    explaining=explaining,
    money=True,
    fixes={
        "missing_in_target": "The ERP has cash applied to an invoice billing does not hold "
        "(or holds as void). Find the billing invoice, or reverse the application in the ERP.",
        "missing_in_source": "Billing says this invoice was paid but the ERP holds no invoice "
        "under its number to apply the cash to. Post the invoice to the ERP, then apply the "
        "payment.",
        "duplicate": "The ERP holds more than one invoice under this number: void the extra "
        "one before applying cash.",
        "amount_mismatch": "The ERP and billing disagree on what was paid (a payment deleted or "
        "applied in one system only). Apply or restore the customer payment in the ERP, or "
        "record the payment in billing.",
    },
)
