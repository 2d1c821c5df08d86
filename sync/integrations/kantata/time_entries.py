"""Kantata time entries (`/time_entries` records) read strictly into `ParsedTime`.

`time_entry_read` is the one interface. Behind it, a plain path takes an entry whose every
field already has its plain, valid form (almost all of them) with a few type checks, and a
careful path checks each field on its own so that the error names every one that is wrong.
Both accept exactly the same entries (a test compares them).
"""

from __future__ import annotations

import datetime as dt
import functools
from decimal import Decimal
from typing import Any, NamedTuple

from sync.connectors.base import iso_date
from sync.errors import PayloadError

MAX_TEXT = 255
# The entry's own id is stored prefixed, as the exception items' record key
# `psa:time_entry:<id>` and the ERP key `KT-TE-<id>`, both at most 255 characters.
MAX_ENTRY_ID = MAX_TEXT - len("psa:time_entry:")
MAX_MINUTES_PER_DAY = 24 * 60
# The largest rate TimeEntry.bill_rate holds (18 digits, 4 after the point), in cents: a larger
# one is refused here, not by the database, which would roll back the whole batch.
MAX_RATE_CENTS = 10**16 - 1


class ParsedTime(NamedTuple):
    external_id: str
    workspace_id: str
    story_id: str
    user_id: str
    work_date: dt.date
    minutes: int
    billable: bool
    approved: bool
    rate: Decimal
    currency: str
    hours: Decimal  # minutes / 60, to the hundredth (half-even, Decimal's default)


_CENT = Decimal("0.01")
_SIXTY = Decimal(60)


def time_entry_read(payload: Any) -> ParsedTime:
    """Read a Kantata time entry strictly. Raises PayloadError naming every field it refuses."""
    if not isinstance(payload, dict):
        raise PayloadError("The payload is not a JSON object.")
    plain = _plain(payload)
    return plain if plain is not None else _careful(payload)


def _plain_id(value: Any, limit: int = MAX_TEXT) -> str | None:
    """An id that needs no checking beyond its type and length (the common case), else None."""
    if type(value) is str:
        return value if 0 < len(value) <= limit else None
    if type(value) is int:
        text = str(value)
        return text if len(text) <= limit else None
    return None


def _plain(payload: dict[str, Any]) -> ParsedTime | None:
    """The entry when every field has its plain, valid form; None sends it to the careful path
    (which accepts exactly the same entries and names what is wrong with the others)."""
    get = payload.get
    ids = (
        _plain_id(get("id"), MAX_ENTRY_ID),
        _plain_id(get("workspace_id")),
        _plain_id(get("story_id")),
        _plain_id(get("user_id")),
    )
    minutes, cents = get("time_in_minutes"), get("rate_in_cents")
    billable, approved = get("billable"), get("approved")
    currency, day = get("currency"), get("date_performed")
    if (
        None in ids
        or type(minutes) is not int
        or not 0 < minutes <= MAX_MINUTES_PER_DAY
        or type(cents) is not int
        or not 0 <= cents <= MAX_RATE_CENTS
        or type(billable) is not bool
        or type(approved) is not bool
        or type(currency) is not str
        or len(currency) != 3
        or not currency.isascii()
        or not currency.isalpha()
        or type(day) is not str
    ):
        return None
    try:
        work_date = iso_date(day)
    except ValueError:
        return None
    return ParsedTime(
        *ids,
        work_date,
        minutes,
        billable,
        approved,
        _rate(cents),
        currency.upper(),
        _hours(minutes),
    )


def _careful(payload: dict[str, Any]) -> ParsedTime:
    """Every field checked on its own, so that the error names each one that is wrong."""
    errors: list[str] = []

    def take(fn, *args):
        try:
            return fn(*args)
        except PayloadError as exc:
            errors.append(str(exc))
            return None

    values = (
        take(_text, payload, "id", MAX_ENTRY_ID),
        take(_text, payload, "workspace_id"),
        take(_text, payload, "story_id"),
        take(_text, payload, "user_id"),
        take(_date, payload.get("date_performed")),
        take(_minutes, payload.get("time_in_minutes")),
        take(_bool, payload, "billable"),
        take(_bool, payload, "approved"),
        take(_cents, payload.get("rate_in_cents")),
        take(_currency, payload.get("currency")),
    )
    if errors:
        raise PayloadError(" ".join(errors))
    return ParsedTime(*values, _hours(values[5]))


@functools.lru_cache(maxsize=MAX_MINUTES_PER_DAY)
def _hours(minutes: int) -> Decimal:
    """Minutes as hours to the hundredth (half-even, Decimal's default): 1,440 values at most."""
    return (Decimal(minutes) / _SIXTY).quantize(_CENT)


@functools.lru_cache(maxsize=4096)
def _rate(cents: int) -> Decimal:
    """A non-negative whole number of cents as an amount (a firm has a few hundred rates)."""
    return (Decimal(cents) / 100).quantize(_CENT)


def _text(payload: dict[str, Any], name: str, limit: int = MAX_TEXT) -> str:
    value = payload.get(name)
    if value is None or value == "":
        raise PayloadError(f"`{name}` is missing.")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PayloadError(f"`{name}` must be an id (text or integer), got {type(value).__name__}.")
    text = str(value)
    if len(text) > limit:
        raise PayloadError(f"`{name}` is {len(text)} characters long; at most {limit}.")
    return text


def _date(value: Any) -> dt.date:
    if not isinstance(value, str):
        raise PayloadError("`date_performed` must be a YYYY-MM-DD date.")
    try:
        return iso_date(value)
    except ValueError as exc:
        raise PayloadError(f"`date_performed` {value[:40]!r} is not a YYYY-MM-DD date.") from exc


def _minutes(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError("`time_in_minutes` must be a whole number of minutes.")
    if not 0 < value <= MAX_MINUTES_PER_DAY:
        raise PayloadError(f"`time_in_minutes` {value} is outside 1..{MAX_MINUTES_PER_DAY}.")
    return value


def _bool(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name)
    if not isinstance(value, bool):
        raise PayloadError(f"`{name}` must be true or false.")
    return value


def _cents(value: Any) -> Decimal:
    if value is None:
        return Decimal("0.00")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError("`rate_in_cents` must be a non-negative whole number of cents.")
    if value > MAX_RATE_CENTS:
        raise PayloadError(
            f"`rate_in_cents` {str(value)[:40]} is beyond any bill rate (at most {MAX_RATE_CENTS})."
        )
    return _rate(value)


def _currency(value: Any) -> str:
    # ASCII only: "ß".upper() is "SS", which would no longer be a three-letter code.
    if not isinstance(value, str) or len(value) != 3 or not value.isascii() or not value.isalpha():
        raise PayloadError("`currency` must be a three-letter ISO 4217 code.")
    return value.upper()
