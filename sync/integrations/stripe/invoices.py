"""Issuing one invoice in Stripe for one invoice candidate: draft, items, finalize, each call
with a deterministic Idempotency-Key derived from the delivery's key.

Stripe has no upsert and the sandbox no Search, so a lost answer is resolved the way Stripe
documents (https://docs.stripe.com/api/idempotent_requests): the same request with the same key
replays the first answer. The three steps are keyed `<delivery key>:invoice`,
`<delivery key>:item:<n>` and `<delivery key>:finalize`, and the request bodies come from the
frozen outbox payload, so a retry, a replay or a worker killed between two steps re-runs the
whole sequence and gets the same draft, the same items and the same finalized invoice: never a
second invoice. Stripe keeps keys 24 hours; the outbox retries well within that.

Invoices: https://docs.stripe.com/api/invoices/create (a draft without pending items:
`pending_invoice_items_behavior=exclude`), items on that draft: https://docs.stripe.com/api/
invoiceitems/create (`invoice=`), finalize: https://docs.stripe.com/api/invoices/finalize.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync.connectors.base import TRANSIENT, TransportError
from sync.errors import PayloadError
from sync.integrations.stripe.client import EXTERNAL_ID_KEY, StripeConnector

RECORD_TYPE = "invoice"  # the outbox's record type for "issue this candidate's invoice"
KEY_PREFIX = "LB-IC-"
DAYS_UNTIL_DUE = 30


def billing_invoice_key(candidate_id: int) -> str:
    """The external id (metadata[ledgerbridge_id]) of the invoice billing a candidate."""
    return f"{KEY_PREFIX}{candidate_id}"


def billing_invoice_body(
    *,
    customer: str,
    currency: str,
    description: str,
    lines: list[tuple[str, int]],
    metadata: Mapping[str, str],
    days_until_due: int = DAYS_UNTIL_DUE,
) -> dict[str, Any]:
    """The outbox body of one invoice: the Stripe customer id, the ISO currency, and its lines
    as (description, amount in minor units). Amounts are whole minor units: Stripe takes no
    decimals (https://docs.stripe.com/currencies#minor-units)."""
    return {
        "customer": customer,
        "currency": currency.lower(),
        "description": description,
        "days_until_due": days_until_due,
        "metadata": dict(metadata),
        "lines": [{"description": text, "amount": amount} for text, amount in lines],
    }


def billing_invoice_issue(
    connector: StripeConnector,
    *,
    external_id: str,
    body: Mapping[str, Any],
    idempotency_key: str,
) -> dict[str, Any]:
    """Create the draft, add every line, finalize; returns the finalized invoice (its `id` and
    `number`). Safe to repeat with the same arguments: every call replays under its key.
    Raises TransportError as the connector classifies it."""
    if not idempotency_key:
        raise ValueError("issuing an invoice needs the delivery's idempotency key")
    metadata = {**(body.get("metadata") or {}), EXTERNAL_ID_KEY: external_id}
    customer, currency = body["customer"], body["currency"]
    draft = connector.invoice_create(
        values={
            "customer": customer,
            "currency": currency,
            "collection_method": "send_invoice",
            "days_until_due": int(body.get("days_until_due") or DAYS_UNTIL_DUE),
            "description": body.get("description") or "",
            "pending_invoice_items_behavior": "exclude",
            "auto_advance": False,
            "metadata": metadata,
        },
        idempotency_key=f"{idempotency_key}:invoice",
    )
    for number, line in enumerate(body["lines"]):
        amount = line["amount"]
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError("an invoice line's amount is a whole number of minor units")
        connector.invoice_item_create(
            values={
                "customer": customer,
                "currency": currency,
                "invoice": draft["id"],
                "amount": amount,
                "description": line["description"],
                "metadata": {EXTERNAL_ID_KEY: f"{external_id}:{number}"},
            },
            idempotency_key=f"{idempotency_key}:item:{number}",
        )
    return connector.invoice_finalize(
        invoice_id=draft["id"], idempotency_key=f"{idempotency_key}:finalize"
    )


class StripeBillingConnector(StripeConnector):
    """The Stripe connector the outbox delivers to: `invoice` deliveries issue a whole invoice
    (`billing_invoice_issue`); other record types are the plain connector's writes."""

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
        invoice = billing_invoice_issue(
            self, external_id=external_id, body=body, idempotency_key=idempotency_key or ""
        )
        return str(invoice["id"])

    def get_by_external_id(self, *, record_type: str, external_id: str) -> dict[str, Any] | None:
        if record_type == RECORD_TYPE:
            # Not found by search (eventually consistent; absent in the sandbox): the outbox
            # retries the whole sequence under the same keys, which replays what was done.
            raise TransportError(
                kind=TRANSIENT,
                vendor_code="reissue_with_same_keys",
                message=f"invoice {external_id}: retry with the same Idempotency-Keys",
            )
        return super().get_by_external_id(record_type=record_type, external_id=external_id)


# -- invoices read back from a pull --------------------------------------------------------------
BILLED_PERIOD = "billedPeriod"  # TargetRecord type: a project's month billed outside Ledgerbridge
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")  # YYYY-MM


@dataclass(frozen=True)
class BilledInvoice:
    """A Stripe invoice as a pull lists it: what billing says it bills (its metadata)."""

    invoice_id: str
    number: str | None
    status: str
    ledgerbridge_id: str | None  # ours: LB-IC-<candidate>
    project_key: str | None  # the project code it bills, for invoices made before Ledgerbridge
    period: str | None  # YYYY-MM: the month it bills (time and materials, usage)


def billed_period_key(project_code: str, period: str) -> str:
    """The TargetRecord key of a project's month billed outside Ledgerbridge."""
    return f"{project_code}/{period}"


def billed_invoice_read(payload: Any) -> BilledInvoice:
    """Read a pulled Stripe invoice. Raises PayloadError naming every problem. A `period` that
    is not YYYY-MM is ignored (None): it bills no month Ledgerbridge can name."""
    if not isinstance(payload, dict):
        raise PayloadError("The Stripe invoice payload is not a JSON object.")
    errors = []
    invoice_id = payload.get("id")
    if not isinstance(invoice_id, str) or not invoice_id.startswith("in_"):
        errors.append(f"`id` must be a Stripe invoice id (in_…), got {str(invoice_id)[:40]!r}.")
    status = payload.get("status")
    if not isinstance(status, str):
        errors.append("`status` is missing.")
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, dict):
        errors.append("`metadata` must be an object.")
        metadata = {}
    if errors:
        raise PayloadError(" ".join(errors))
    period = metadata.get("period")
    if not (isinstance(period, str) and _PERIOD.fullmatch(period)):
        period = None
    number = payload.get("number")
    text = {k: metadata.get(k) for k in (EXTERNAL_ID_KEY, "project_key")}
    return BilledInvoice(
        invoice_id=invoice_id,
        number=number if isinstance(number, str) else None,
        status=status,
        ledgerbridge_id=text[EXTERNAL_ID_KEY] if isinstance(text[EXTERNAL_ID_KEY], str) else None,
        project_key=text["project_key"][:40] if isinstance(text["project_key"], str) else None,
        period=period,
    )
