"""What reconciliation reads from Kantata: its users as the PSA holds them now (read-only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sync.integrations.kantata.client import KantataConnector


def users_pages(connector: KantataConnector) -> Iterator[list[dict[str, Any]]]:
    """Every user, page by page: id, email_address, is_placeholder (Ledgerbridge's addition:
    role placeholders are not people) as Kantata lists them."""
    for page in connector.pull(entity="users"):
        yield page.records
