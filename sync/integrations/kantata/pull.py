"""What a cycle pulls from Kantata, and how its records and pull positions read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sync.connectors.base import instant_read
from sync.integrations.kantata.client import CHANGE_EVENTS

# Time entries and expenses: the approved ones (KantataConnector's approved_only).
PULL_PLAN = ("workspaces", "stories", "assignments", "users", "time_entries", "expenses")
# Pulled on request only (backfills, explicit pulls): the change feed.
EXTRA_ENTITIES = (CHANGE_EVENTS,)
# Entities whose pull position is a feed position rather than a change time.
FEEDS = frozenset({CHANGE_EVENTS})


def record_changed_at(entity: str, record: Mapping[str, Any]) -> dt.datetime | None:
    """When a record changed: `occurred_at` for a change event, else `updated_at`."""
    return instant_read(record.get("occurred_at" if entity == CHANGE_EVENTS else "updated_at"))
