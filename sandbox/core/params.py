"""Parsing request values safely: what a dialect turns into a database value must fit it.

Every helper returns None for a value that cannot be used, so the dialect raises its own
vendor-shaped 4xx; none lets a bad value reach the database (where it would be a 500).
"""

from __future__ import annotations

import datetime as dt
import re

_ID = re.compile(r"[0-9]{1,18}")  # fits a signed 64-bit column on every backend


def id_value(text: str) -> int | None:
    """A non-negative numeric id written in ASCII digits, small enough for a bigint column."""
    return int(text) if _ID.fullmatch(text) else None


def aware_datetime(text: str) -> dt.datetime | None:
    """An ISO 8601 date or date-time (naive = UTC); None when unparseable or out of range."""
    try:
        value = dt.datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value.astimezone(dt.UTC)  # year 1 at +14:00 overflows here rather than in the driver
    except (ValueError, OverflowError):
        return None
    return value


def iso_date(text: str) -> str | None:
    """A YYYY-MM-DD date, normalised; None when invalid."""
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        return None
