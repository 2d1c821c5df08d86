"""NetSuite customer payments: the key and body of a payment Ledgerbridge records for cash that
billing collected, and how a payment entered in the ERP reads (which invoices it applies).

A payment billing collected becomes one ERP customer payment keyed `ST-PAY-<billing invoice
id>` (billing collects an invoice once, in full; decision 110). NetSuite applies a payment only
when it is created (the apply sublist is not changed by an update), so a resend must not write
the payment again: `NetSuitePaymentsConnector` looks the key up first and answers the existing
payment's id. Customer payment record: https://system.netsuite.com/help/helpcenter/en_US/
APIs/REST_API_Browser/record/v1/2023.2/index.html#/definitions/customerPayment
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sync.errors import PayloadError
from sync.integrations.netsuite.client import RECORD, NetSuiteConnector

RECORD_TYPE = "customerPayment"
KEY_PREFIX = "ST-PAY-"
IN_CHUNK = 1000  # ids in one SuiteQL IN list (Oracle's limit for an expression list)


def erp_payment_key(billing_invoice_id: str) -> str:
    """The externalId of the ERP payment of the cash billing collected on an invoice."""
    return f"{KEY_PREFIX}{billing_invoice_id}"


def erp_payment_body(
    *,
    billing_invoice_id: str,
    customer: str,
    invoice: str,
    tran_date: dt.date,
    amount: Decimal,
    memo: str,
) -> dict[str, Any]:
    """The REST body of the ERP customer payment applying `amount` to ERP invoice `invoice`
    (internal ids). Amounts are exact decimal strings (the outbox keeps JSON)."""
    return {
        "externalId": erp_payment_key(billing_invoice_id),
        "customer": {"id": customer},
        "tranDate": tran_date.isoformat(),
        "payment": str(amount),
        "memo": memo[:999],
        "apply": {"items": [{"doc": {"id": invoice}, "apply": True, "amount": str(amount)}]},
    }


@dataclass(frozen=True)
class ErpPayment:
    """A customer payment as the ERP holds it, with what it applies: {invoice id: amount}."""

    payment_id: str
    external_id: str | None
    tran_date: dt.date
    applied: Mapping[str, Decimal]

    @property
    def ours(self) -> bool:
        """Recorded by Ledgerbridge for cash billing collected: never carried back."""
        return (self.external_id or "").startswith(KEY_PREFIX)


def _decimal(value: Any, path: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise PayloadError(f"`{path}` is not a number: {str(value)[:40]!r}.") from None
    if not amount.is_finite():
        raise PayloadError(f"`{path}` is not a finite number.")
    return amount


def erp_payment_read(payload: Any) -> ErpPayment:
    """Read a customer payment record fetched with its sublists expanded. Raises PayloadError."""
    if not isinstance(payload, dict) or not payload.get("id"):
        raise PayloadError("The customer payment is not a record with an id.")
    try:
        tran_date = dt.date.fromisoformat(str(payload.get("tranDate")))
    except ValueError:
        raise PayloadError("`tranDate` is not an ISO date.") from None
    lines = (payload.get("apply") or {}).get("items") or []
    applied: dict[str, Decimal] = {}
    for index, line in enumerate(lines):
        doc = (line.get("doc") or {}).get("id") if isinstance(line, dict) else None
        if not doc or line.get("apply") is False:
            continue
        amount = _decimal(line.get("amount"), f"apply.items[{index}].amount")
        applied[str(doc)] = applied.get(str(doc), Decimal(0)) + amount
    external_id = payload.get("externalId")
    return ErpPayment(
        payment_id=str(payload["id"]),
        external_id=external_id if isinstance(external_id, str) else None,
        tran_date=tran_date,
        applied=applied,
    )


class NetSuitePaymentsConnector(NetSuiteConnector):
    """The NetSuite connector the outbox delivers to, reading customer payments too."""

    def upsert_by_external_id(
        self,
        *,
        record_type: str,
        external_id: str,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> str:
        if record_type == RECORD_TYPE:
            # Applied only on create: an existing payment is the answer, never written again.
            found = self.get_by_external_id(record_type=record_type, external_id=external_id)
            if found is not None:
                return str(found["id"])
        return super().upsert_by_external_id(
            record_type=record_type,
            external_id=external_id,
            body=body,
            idempotency_key=idempotency_key,
        )

    def invoices_read(self, *, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The ERP invoices of these internal ids with what remains on them, by id: SuiteQL
        rows (`id`, `total`, `amountremaining`, `entity`), `IN_CHUNK` ids a query."""
        rows: dict[str, dict[str, Any]] = {}
        digits = [i for i in ids if i.isdigit()]
        for start in range(0, len(digits), IN_CHUNK):
            chunk = ", ".join(digits[start : start + IN_CHUNK])
            query = (
                "SELECT id, total, amountremaining, entity FROM invoice "  # noqa: S608
                f"WHERE id IN ({chunk}) ORDER BY id"
            )
            for page in self.suiteql(query):
                rows.update((str(row["id"]), row) for row in page.records)
        return rows

    def customer_payment_ids(self, *, customer: str) -> list[str]:
        """The internal ids of the customer's payments (SuiteQL), oldest first."""
        if not customer.isdigit():
            raise ValueError("a NetSuite customer internal id is digits")
        query = f"SELECT id FROM {RECORD_TYPE} WHERE customer = {customer} ORDER BY id"  # noqa: S608
        return [str(row["id"]) for page in self.suiteql(query) for row in page.records]

    def customer_payment_get(self, *, payment_id: str) -> ErpPayment:
        """One customer payment with the invoices it applies. Raises TransportError,
        PayloadError."""
        answer = self.http.request(
            "GET",
            f"{RECORD}/{RECORD_TYPE}/{payment_id}",
            params={"expandSubResources": "true"},
        )
        return erp_payment_read(answer.json())
