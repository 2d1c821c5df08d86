"""NetSuite invoice records: the key and body Ledgerbridge upserts a billing invoice with.

One ERP invoice per billing invoice, keyed by the billing invoice's number (`externalId` and
`otherRefNum`), as the firm's ERP already holds the invoices billed before Ledgerbridge: an
upsert by `eid:` is idempotent by itself, so a resend or replay updates the same invoice
(https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_1545141395.html).
The receivable follows from the invoice itself (NetSuite posts it to the customer's A/R).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

RECORD_TYPE = "invoice"


@dataclass(frozen=True)
class ErpInvoiceLine:
    item: str  # the service item, e.g. "Professional services"
    description: str
    quantity: Decimal
    rate: Decimal
    amount: Decimal


def erp_invoice_body(
    *,
    number: str,
    customer: dict[str, str],
    job: dict[str, str] | None,
    tran_date: dt.date,
    due_date: dt.date | None,
    memo: str,
    lines: list[ErpInvoiceLine],
) -> dict[str, Any]:
    """The REST body of the ERP invoice of billing invoice `number` (references as
    `time_bills.record_ref` gives them). Amounts are exact decimal strings (the outbox keeps
    JSON; a float would round). Subsidiary and currency are the customer's (NetSuite sources
    them, and refuses others)."""
    return {
        "externalId": number,
        "otherRefNum": number[:45],
        "entity": customer,
        "job": job,
        "tranDate": tran_date.isoformat(),
        "dueDate": due_date.isoformat() if due_date else None,
        "memo": memo[:999],
        "item": {
            "items": [
                {
                    "item": line.item,
                    "description": line.description,
                    "quantity": str(line.quantity),
                    "rate": str(line.rate),
                    "amount": str(line.amount),
                }
                for line in lines
            ]
        },
    }
