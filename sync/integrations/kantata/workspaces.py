"""The PSA workspace Ledgerbridge provisions for a project (Kantata /workspaces).

`external_reference` (set by KantataConnector from the delivery's external id) is the ERP
job's externalId, the project code, so each system can find the other.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

RECORD_TYPE = "workspaces"


def workspace_body(
    *,
    title: str,
    client_name: str,
    legal_entity: str,
    currency: str,
    start: dt.date | None,
    end: dt.date | None,
    price: Decimal,
) -> dict[str, Any]:
    """A workspace's attributes; the price in cents, rounded half-up (Kantata keeps integers;
    contract values have two decimals, so nothing is lost in practice)."""
    return {
        "title": title,
        "client_name": client_name,
        "legal_entity": legal_entity,
        "currency": currency,
        "start_date": start.isoformat() if start else None,
        "due_date": end.isoformat() if end else None,
        "price_in_cents": int((price * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)),
        "budgeted": True,
    }
