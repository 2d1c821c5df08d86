"""The PSA workspace and stories Ledgerbridge provisions for a project (Kantata /workspaces,
/stories).

`external_reference` (set by KantataConnector from the delivery's external id) is the ERP
job's externalId (the project code) on the workspace, and the ERP projectTask's externalId (the
WBS code) on each story, so each system can find the other.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

RECORD_TYPE = "workspaces"
STORY_RECORD_TYPE = "stories"


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


def story_body(
    *, title: str, workspace_id: str, parent_id: str | None, allows_time: bool
) -> dict[str, Any]:
    """A WBS story of a workspace (under its parent story, when it has one)."""
    return {
        "title": title,
        "workspace_id": workspace_id,
        "parent_id": parent_id,
        "story_type": "task" if allows_time else "deliverable",
        "state": "not started",
    }
