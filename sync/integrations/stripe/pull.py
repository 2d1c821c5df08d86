"""What a cycle pulls from Stripe, and how its records read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sync.connectors.base import instant_read

PULL_PLAN = ("customers", "invoices")
# Pulled on request only (backfills, explicit pulls).
EXTRA_ENTITIES = ("invoiceitems", "events")


def record_changed_at(entity: str, record: Mapping[str, Any]) -> dt.datetime | None:
    """When a Stripe object was created (unix seconds): Stripe lists filter on nothing else."""
    return instant_read(record.get("created"))
