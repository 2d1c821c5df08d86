"""CSV file drops of time entries, read into the Kantata time-entry record shape.

Streaming (one row in memory at a time, plus the ids seen to catch duplicates), with spreadsheet
row numbers (the header is row 1) on every record and every rejected row, so finance ops can
find the line to fix. Values are checked exactly: hours that are not whole minutes, or a rate
with more decimals than its currency has, are rejected, never rounded.

Columns (header names, case-insensitive; extra columns are ignored):
  required  entry_id, user_id, workspace_id, date_performed (YYYY-MM-DD),
            and time_in_minutes or hours
  optional  story_id, billable (true/false/yes/no/1/0, default true), notes,
            rate (decimal, major units) with currency (ISO 4217), approved (default true)
Output: {"id", "user_id", "workspace_id", "story_id", "date_performed", "time_in_minutes",
"billable", "notes", "rate_in_cents", "currency", "approved", "source_row"}
(Kantata's names, https://developer.kantata.com/ "Time Entries"; `rate_in_cents` is minor units).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from sync.connectors.base import CONFIGURATION, Page, RejectedRow, TransportError, iso_date
from sync.connectors.paging import int_cursor

PAGE_SIZE = 1000
REQUIRED = ("entry_id", "user_id", "workspace_id", "date_performed")
# Currencies without a minor unit; every other ISO 4217 code we see has two decimals.
ZERO_DECIMAL = frozenset({"JPY", "KRW", "ISK", "CLP", "VND"})
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


class RowInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _flag(row: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (row.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise RowInvalid(name, f"{name} must be true or false, got {raw!r}")


def _decimal(row: Mapping[str, str], name: str) -> Decimal:
    raw = (row.get(name) or "").strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise RowInvalid(name, f"{name} must be a number, got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise RowInvalid(name, f"{name} must be a non-negative number, got {raw!r}")
    return value


def _minutes(row: Mapping[str, str]) -> int:
    if (row.get("time_in_minutes") or "").strip():
        minutes = _decimal(row, "time_in_minutes")
        field = "time_in_minutes"
    elif (row.get("hours") or "").strip():
        minutes = _decimal(row, "hours") * 60
        field = "hours"
    else:
        raise RowInvalid("time_in_minutes", "time_in_minutes or hours is required")
    if minutes != minutes.to_integral_value():
        raise RowInvalid(field, f"{field} is not a whole number of minutes")
    if minutes == 0 or minutes > 24 * 60:
        raise RowInvalid(field, f"{field} must be more than 0 and at most 24 hours")
    return int(minutes)


def _rate(row: Mapping[str, str]) -> tuple[int | None, str | None]:
    currency = (row.get("currency") or "").strip().upper() or None
    if not (row.get("rate") or "").strip():
        return None, currency
    if currency is None or len(currency) != 3 or not currency.isalpha():
        raise RowInvalid("currency", "a rate needs its ISO 4217 currency")
    rate = _decimal(row, "rate")
    minor = rate * (1 if currency in ZERO_DECIMAL else 100)
    if minor != minor.to_integral_value():
        raise RowInvalid("rate", f"rate has more decimals than {currency} allows")
    return int(minor), currency


def time_entry_from_row(row: Mapping[str, str], *, row_number: int) -> dict[str, Any]:
    """One CSV row as a time-entry record; raises RowInvalid naming the field."""
    for name in REQUIRED:
        if not (row.get(name) or "").strip():
            raise RowInvalid(name, f"{name} is required")
    raw_date = row["date_performed"].strip()
    try:
        performed = iso_date(raw_date)
    except ValueError:
        raise RowInvalid(
            "date_performed", f"date_performed must be YYYY-MM-DD, got {raw_date!r}"
        ) from None
    rate, currency = _rate(row)
    return {
        "id": row["entry_id"].strip(),
        "user_id": row["user_id"].strip(),
        "workspace_id": row["workspace_id"].strip(),
        "story_id": (row.get("story_id") or "").strip() or None,
        "date_performed": performed.isoformat(),
        "time_in_minutes": _minutes(row),
        "billable": _flag(row, "billable", True),
        "notes": (row.get("notes") or "").strip(),
        "rate_in_cents": rate,
        "currency": currency,
        "approved": _flag(row, "approved", True),
        "source_row": row_number,
    }


def time_entries_read(stream: IO[str]) -> Iterator[dict[str, Any] | RejectedRow]:
    """Each data row of a CSV drop as a record or a RejectedRow, in file order.

    Raises TransportError(CONFIGURATION) when the header lacks a required column (the drop's
    format does not match what this reader expects: fix the export or the mapping).
    """
    reader = csv.DictReader(stream)
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    missing = [n for n in REQUIRED if n not in header]
    if "time_in_minutes" not in header and "hours" not in header:
        missing.append("time_in_minutes or hours")
    if missing:
        raise TransportError(
            kind=CONFIGURATION, message=f"the CSV drop lacks the columns: {', '.join(missing)}"
        )
    reader.fieldnames = header
    seen: set[str] = set()
    for index, raw in enumerate(reader):
        row_number = index + 2  # the header is row 1, as in a spreadsheet
        if None in raw:
            yield RejectedRow(
                row_number,
                "the row has more cells than the header",
                "",
                {k: v for k, v in raw.items() if isinstance(v, str)},
            )
            continue
        row = {k: (v or "") for k, v in raw.items()}
        try:
            record = time_entry_from_row(row, row_number=row_number)
        except RowInvalid as exc:
            yield RejectedRow(row_number, exc.message, exc.field, row)
            continue
        if record["id"] in seen:
            yield RejectedRow(
                row_number, f"entry_id {record['id']} appears twice in this drop", "entry_id", row
            )
            continue
        seen.add(record["id"])
        yield record


class CsvDropConnector:
    """Reads one dropped file page by page; `cursor` is the number of data rows already read."""

    def __init__(
        self, path: str | Path, *, page_size: int = PAGE_SIZE, encoding: str = "utf-8-sig"
    ) -> None:
        self.path = Path(path)
        self.page_size = page_size
        self.encoding = encoding

    def pull(
        self, *, entity: str = "time_entries", since: str | None = None, cursor: str | None = None
    ) -> Iterator[Page]:
        """Pages of records, each with the rows rejected among them. `since` is ignored (a
        drop is read whole); the pull position is None."""
        if entity != "time_entries":
            raise ValueError(f"CSV drops carry time_entries, not {entity!r}")
        skip = int_cursor(cursor, default=0)
        with self.path.open(encoding=self.encoding, newline="") as stream:
            yield from pages_from_stream(stream, page_size=self.page_size, skip=skip)


def pages_from_stream(
    stream: IO[str], *, page_size: int = PAGE_SIZE, skip: int = 0
) -> Iterator[Page]:
    records: list[dict[str, Any]] = []
    rejected: list[RejectedRow] = []
    consumed = 0
    for item in time_entries_read(stream):
        consumed += 1
        if consumed <= skip:
            continue
        if isinstance(item, RejectedRow):
            rejected.append(item)
        else:
            records.append(item)
        if len(records) + len(rejected) >= page_size:
            yield Page(
                records=records, next_cursor=str(consumed), position=None, rejected=tuple(rejected)
            )
            records, rejected = [], []
    yield Page(records=records, next_cursor=None, position=None, rejected=tuple(rejected))


def pages_from_text(text: str, *, page_size: int = PAGE_SIZE) -> Iterator[Page]:
    """The same, from a string (an uploaded file already in memory)."""
    return pages_from_stream(io.StringIO(text, newline=""), page_size=page_size)
