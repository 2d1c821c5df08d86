"""What reconciliation reads from billing (Stripe API v1) through its own lists: invoices as
billing holds them now (read-only). Pages of plain dicts as Stripe answers them: amounts in the
currency's minor units (integers), currency in lower case, times in unix seconds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sync.integrations.stripe.client import StripeConnector


def invoices_pages(connector: StripeConnector) -> Iterator[list[dict[str, Any]]]:
    """Every invoice billing lists (GET /v1/invoices, cursor pages; drafts included), newest
    first as Stripe lists them. Stripe filters lists by creation only, so the caller scopes by
    period itself (https://docs.stripe.com/api/invoices/list)."""
    for page in connector.pull(entity="invoices"):
        yield page.records
