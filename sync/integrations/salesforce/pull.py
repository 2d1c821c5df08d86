"""What a cycle pulls from Salesforce, and how its records read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sync.connectors.base import instant_read

PULL_PLAN = ("Account", "Opportunity", "Contract")
ID_FIELD = "Id"


def record_changed_at(entity: str, record: Mapping[str, Any]) -> dt.datetime | None:
    """When an sObject last changed (`LastModifiedDate`)."""
    return instant_read(record.get("LastModifiedDate"))
