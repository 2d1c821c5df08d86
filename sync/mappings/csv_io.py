"""A mapping version's entries as CSV: the file people export, edit and import. Pure.

The format is one header row `source_value,target_value,attributes`, then one row per entry;
`attributes` is a JSON object or blank. `entries_csv_parse` reads every row and reports every
bad one with its row number (the header is row 1, as a spreadsheet numbers it), so a file is
either wholly good or refused: the service that imports it writes nothing unless it is.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

HEADER = ("source_value", "target_value", "attributes")
VALUE_MAX_LENGTH = 255  # MappingEntry.source_value / target_value
MAX_ROWS = 50_000
MAX_ERRORS = 20  # reported; the count of the rest is said


@dataclass(frozen=True)
class CsvRow:
    number: int  # as a spreadsheet numbers it: the header is row 1
    source_value: str
    target_value: str
    attributes: dict[str, Any]


@dataclass
class CsvParsed:
    rows: list[CsvRow] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row number, reason)

    def refuse(self, number: int, reason: str) -> None:
        self.errors.append((number, reason))


def _attributes(text: str) -> dict[str, Any] | None:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def entries_csv_parse(text: str) -> CsvParsed:
    """Every row of `text` as a CsvRow, or the reasons rows are bad (each with its number).

    Checks the header, the column count, blank and over-long values, a source value given
    twice, and attributes that are not a JSON object. Reference data is not checked here (the
    caller knows the set). A file without data rows is an error too: it would import nothing.
    """
    parsed = CsvParsed()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or tuple(h.strip().lower() for h in header[:2]) != HEADER[:2]:
            parsed.refuse(1, f"The first row must be the header {','.join(HEADER)}.")
            return parsed
        seen: dict[str, int] = {}
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue  # a blank line, as spreadsheets leave at the end
            if number > MAX_ROWS + 1:
                parsed.refuse(number, f"More than {MAX_ROWS:,} rows: split the file.")
                break
            _row_read(parsed, number, cells, seen)
    except csv.Error as error:
        parsed.refuse(reader.line_num, f"Not readable as CSV: {error}.")
    if not parsed.rows and not parsed.errors:
        parsed.refuse(2, "The file has a header but no rows.")
    return parsed


def _row_read(parsed: CsvParsed, number: int, cells: list[str], seen: dict[str, int]) -> None:
    if len(cells) not in (2, 3):
        parsed.refuse(
            number, f"{len(cells)} columns; expected {len(HEADER)} ({', '.join(HEADER)})."
        )
        return
    source, target = cells[0].strip(), cells[1].strip()
    attributes = _attributes(cells[2] if len(cells) == 3 else "")
    reason = None
    if not source or not target:
        reason = "source_value and target_value are both required."
    elif max(len(source), len(target)) > VALUE_MAX_LENGTH:
        reason = f"A value is longer than {VALUE_MAX_LENGTH} characters."
    elif source in seen:
        reason = f"Source value {source!r} is already on row {seen[source]}."
    elif attributes is None:
        reason = 'attributes must be a JSON object such as {"rate": "20"}, or blank.'
    if reason is not None:
        parsed.refuse(number, reason)
        return
    seen[source] = number
    parsed.rows.append(CsvRow(number, source, target, attributes))


def entries_csv_render(rows: Iterable[tuple[str, str, Mapping[str, Any] | None]]) -> str:
    """(source, target, attributes) rows as the CSV `entries_csv_parse` reads back."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for source, target, attributes in rows:
        writer.writerow(
            [source, target, json.dumps(attributes, sort_keys=True) if attributes else ""]
        )
    return out.getvalue()


def csv_errors_describe(errors: list[tuple[int, str]]) -> list[str]:
    """The first MAX_ERRORS errors as "Row N: reason" lines, and how many more there are."""
    lines = [f"Row {number}: {reason}" for number, reason in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        lines.append(f"… and {len(errors) - MAX_ERRORS} more bad rows.")
    return lines
