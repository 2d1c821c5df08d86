"""What a cycle pulls from a SCIM directory, and how its records read."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sync.connectors.base import instant_read

PULL_PLAN = ("Users",)


def record_changed_at(entity: str, record: Mapping[str, Any]) -> dt.datetime | None:
    """When a SCIM resource last changed (`meta.lastModified`, RFC 7643 §3.1)."""
    return instant_read((record.get("meta") or {}).get("lastModified"))
