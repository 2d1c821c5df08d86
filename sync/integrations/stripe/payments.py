"""Stripe invoice payments: how a billing invoice's payment reads, and marking an invoice paid
out of band for cash the ERP applied.

Billing collects an invoice in full (card, bank debit): the invoice turns `paid` with
`paid_out_of_band` false. Cash received elsewhere is recorded with `POST /v1/invoices/{id}/pay`
and `paid_out_of_band=true` (https://docs.stripe.com/api/invoices/pay), which is also how
Ledgerbridge's own marks are told from billing's collections (decision 111). The pay call
carries the delivery's Idempotency-Key; an invoice already paid answers
`invoice_unexpected_state`, resolved by reading the invoice back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from sync.connectors.base import PERMANENT, TransportError
from sync.errors import PayloadError
from sync.integrations.stripe.invoices import StripeBillingConnector
from sync.money import from_minor_units

RECORD_TYPE = "invoice_paid_out_of_band"  # the outbox's record type: mark a billing invoice paid
PAID = "paid"
OPEN = "open"
ALREADY_PAID = "invoice_unexpected_state"


@dataclass(frozen=True)
class BillingPayment:
    """What a billing invoice says about its payment."""

    invoice_id: str
    status: str
    out_of_band: bool
    amount_paid: Decimal  # in the invoice's currency, from Stripe's minor units
    currency: str  # ISO code, upper case
    paid_on: dt.date | None

    @property
    def collected_by_billing(self) -> bool:
        """Paid, and by billing itself: cash the ERP has not seen from billing yet."""
        return self.status == PAID and not self.out_of_band


def billing_payment_read(payload: Any, *, minor_units: Mapping[str, int]) -> BillingPayment:
    """Read a Stripe invoice's payment state. `minor_units`: decimals by currency code.
    Raises PayloadError (an unknown currency included)."""
    if not isinstance(payload, dict) or not str(payload.get("id", "")).startswith("in_"):
        raise PayloadError("The billing invoice is not an object with an invoice id.")
    currency = str(payload.get("currency") or "").upper()
    if currency not in minor_units:
        raise PayloadError(f"The billing invoice's currency {currency!r} is not known.")
    paid = payload.get("amount_paid") or 0
    if isinstance(paid, bool) or not isinstance(paid, int):
        raise PayloadError("`amount_paid` is not a whole number of minor units.")
    paid_at = (payload.get("status_transitions") or {}).get("paid_at")
    paid_on = (
        dt.datetime.fromtimestamp(paid_at, dt.UTC).date()
        if isinstance(paid_at, int) and not isinstance(paid_at, bool)
        else None
    )
    return BillingPayment(
        invoice_id=payload["id"],
        status=str(payload.get("status") or ""),
        out_of_band=bool(payload.get("paid_out_of_band")),
        amount_paid=from_minor_units(paid, minor_units[currency]),
        currency=currency,
        paid_on=paid_on,
    )


class StripePaymentsConnector(StripeBillingConnector):
    """The billing connector the outbox delivers to: `invoice_paid_out_of_band` deliveries
    mark the invoice `body["invoice"]` paid out of band; the rest as StripeBillingConnector."""

    def invoices_paid_list(self, *, created_from: dt.datetime) -> Iterator[dict[str, Any]]:
        """The paid invoices created at or after `created_from`, page by page
        (https://docs.stripe.com/api/invoices/list: `status`, `created[gte]`). Raises
        TransportError."""
        params: dict[str, Any] = {
            "status": PAID,
            "created[gte]": int(created_from.timestamp()),
            "limit": self.page_size,
        }
        after = None
        while True:
            query = {**params, **({"starting_after": after} if after else {})}
            body = self.http.request("GET", "/v1/invoices", params=query).json()
            records = body.get("data") or []
            yield from records
            if not (body.get("has_more") and records):
                return
            after = records[-1]["id"]

    def upsert_by_external_id(
        self,
        *,
        record_type: str,
        external_id: str,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
        target_id: str | None = None,
    ) -> str:
        if record_type != RECORD_TYPE:
            return super().upsert_by_external_id(
                record_type=record_type,
                external_id=external_id,
                body=body,
                idempotency_key=idempotency_key,
                target_id=target_id,
            )
        invoice_id = str(body["invoice"])
        try:
            paid = self.post(
                f"/v1/invoices/{quote(invoice_id, safe='')}/pay",
                values={"paid_out_of_band": True},
                idempotency_key=idempotency_key or "",
            )
        except TransportError as exc:
            if exc.vendor_code != ALREADY_PAID:
                raise
            paid = self.get(record_type="invoices", record_id=invoice_id) or {}
            if paid.get("status") != PAID:
                raise
        if paid.get("status") != PAID:
            raise TransportError(
                kind=PERMANENT,
                vendor_code=ALREADY_PAID,
                message=f"billing invoice {invoice_id} is {paid.get('status')}, not paid",
            )
        return invoice_id
