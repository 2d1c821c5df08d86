"""The billing customer Ledgerbridge creates for an onboarded customer (Stripe /v1/customers).

Stripe has no upsert: the delivery's Idempotency-Key makes a resend return the first answer,
and the customer carries our key in `metadata[ledgerbridge_id]` (StripeConnector).
"""

from __future__ import annotations

from typing import Any

RECORD_TYPE = "customers"


def billing_customer_body(
    *, name: str, erp_customer_id: str, crm_account_id: str, currency: str
) -> dict[str, Any]:
    """Name and the cross-references finance looks a billing customer up by."""
    return {
        "name": name,
        "metadata": {
            "erp_customer_id": erp_customer_id,
            "crm_account_id": crm_account_id,
            "currency": currency,
        },
    }
