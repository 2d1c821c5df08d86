"""What a cycle pulls from NetSuite, and how its records and pull positions read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sync.connectors.base import instant_read
from sync.integrations.netsuite.client import POSITION_COLUMN

# Reference data before what points at it; timeBill last: what the ERP holds already by our
# key (sync/pipeline/target_records.py), for time posting.
PULL_PLAN = (
    "currency",
    "subsidiary",
    "accountingPeriod",
    "department",
    "customer",
    "employee",
    "job",
    "projectTask",
    "timeBill",
)


def record_changed_at(entity: str, record: Mapping[str, Any]) -> dt.datetime | None:
    """When a SuiteQL row last changed (its `lastmodified_at` column, the account's UTC)."""
    return instant_read(record.get(POSITION_COLUMN))


def position_format(moment: dt.datetime) -> str:
    """A pull position in SuiteQL's "YYYY-MM-DD HH:MM:SS" (the account's time zone: UTC)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
