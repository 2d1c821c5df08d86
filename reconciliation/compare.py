"""The set-based comparison of one pair's staged rows, run by the database over the staged
table, never a Python loop over the rows. Works on PostgreSQL and SQLite (3.39+: FULL OUTER
JOIN); amounts and quantities are integers, so equal is exact.

- `staged_rows_attribute`: target rows without a key take the key of the source row with the
  same natural `match` (else `unkeyed:<their id>`), so a hand-made second record is seen as a
  duplicate of the one it copies.
- `staged_totals`: count, quantity and amount of the required rows per side and currency.
- `differences_find`: every difference, as Candidates (kind, both sides' records and values),
  from the keys the target holds more than once (GROUP BY over the key index: a duplicate
  hides in a join), one full outer join of the two sides that returns only the keys that
  differ, and the duplicated keys' records by index. One statement per break kind read the
  staged rows ten times over (bench/README.md, docs/decisions.md #74).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction

from reconciliation.models import BreakKind, StagedRow

T = StagedRow._meta.db_table
SCOPE = "run_id = %s AND pair = %s"

ATTRIBUTE = f"""
UPDATE {T} SET "key" = COALESCE(
    (SELECT MIN(s."key") FROM {T} s
      WHERE s.run_id = {T}.run_id AND s.pair = {T}.pair AND s.side = 's'
        AND s."match" = {T}."match" AND s."match" <> ''),
    'unkeyed:' || {T}.external_id)
 WHERE {SCOPE} AND side = 't' AND "key" IS NULL
"""  # noqa: S608 - the model's table name

TOTALS = f"""
SELECT side, currency, COUNT(*), SUM(quantity), SUM(amount) FROM {T}
 WHERE {SCOPE} AND required = %s GROUP BY side, currency ORDER BY side, currency
"""  # noqa: S608

_COLUMNS = (
    '{a}."key", {a}.external_id, {a}.amount, {a}.quantity, {a}.currency, {a}.status, '
    "{a}.period, {a}.legal_entity_id, {a}.project_id, {a}.record_id, {a}.approved_at"
)

# Keys the target holds more than once (a duplicate hides in a join). Only the key column: an
# index-only scan of `recon_staged_key` once the staged rows are vacuumed.
DUPLICATE_KEYS = f"""
SELECT "key" FROM {T} WHERE {SCOPE} AND side = 't' GROUP BY "key" HAVING COUNT(*) > 1
"""  # noqa: S608

# The two sides, fully outer-joined on the key; only the keys that differ come back: on one
# side only (and required there), or paired with a different amount, quantity, currency or
# status. A duplicated key's rows are left to DUPLICATE_KEYS.
DIFFERENT = f"""
SELECT {_COLUMNS.format(a="s")}, s.required, {_COLUMNS.format(a="x")}, x.required
  FROM (SELECT * FROM {T} WHERE {SCOPE} AND side = 's') s
  FULL OUTER JOIN (SELECT * FROM {T} WHERE {SCOPE} AND side = 't') x ON x."key" = s."key"
 WHERE (x."key" IS NULL AND s.required = %s)
    OR (s."key" IS NULL AND x.required = %s)
    OR (s."key" IS NOT NULL AND x."key" IS NOT NULL AND (
           s.amount <> x.amount OR s.quantity <> x.quantity OR s.currency <> x.currency
        OR (s.amount IS NULL AND x.amount IS NOT NULL)
        OR (s.amount IS NOT NULL AND x.amount IS NULL)
        OR (s.status <> x.status AND s.status <> '' AND x.status <> '')))
"""  # noqa: S608

# The records under the duplicated keys, both sides (found by the key index).
DUPLICATED = f"""
SELECT side, {_COLUMNS.format(a="r")} FROM {T} r
 WHERE {SCOPE} AND "key" IN ({{keys}}) ORDER BY "key", side, external_id
"""  # noqa: S608
DUPLICATED_CHUNK = 500
# PostgreSQL's default work_mem (4 MB) spills a million-key hash to disk in batches.
WORK_MEM = "256MB"


@dataclass
class Side:
    external_id: str
    amount: int | None = None
    quantity: int | None = None
    currency: str = ""
    status: str = ""


@dataclass
class Candidate:
    """A difference the comparison found, before it is explained and stored."""

    kind: str
    key: str
    source: Side | None
    targets: list[Side] = field(default_factory=list)
    period: str = ""
    legal_entity_id: int | None = None
    project_id: int | None = None
    record_id: int | None = None
    approved_at: dt.datetime | None = None


def _query(sql: str, params: list[Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _aware(value: Any) -> dt.datetime | None:
    # A raw cursor on SQLite gives naive UTC (or text) back; PostgreSQL an aware datetime.
    if value is None:
        return None
    parsed = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def staged_rows_attribute(*, run_id: int, pair: str) -> int:
    """Give every keyless target row of the pair a key (see the module docstring)."""
    with connection.cursor() as cursor:
        cursor.execute(ATTRIBUTE, [run_id, pair])
        return cursor.rowcount


def staged_totals(
    *, run_id: int, pair: str
) -> dict[str, dict[str, tuple[int, int | None, int | None]]]:
    """{side: {currency: (count, quantity, amount)}} of the required rows (integers)."""
    totals: dict[str, dict[str, tuple[int, int | None, int | None]]] = {"s": {}, "t": {}}
    for side, currency, count, quantity, amount in _query(TOTALS, [run_id, pair, True]):
        totals[side][currency] = (
            count,
            None if quantity is None else int(quantity),
            None if amount is None else int(amount),
        )
    return totals


def _candidate(
    kind: str, key: str, source: Side | None, target: Side | None, values: tuple
) -> Candidate:
    period, entity, project, record, approved = values
    return Candidate(
        kind=kind,
        key=key,
        source=source,
        targets=[] if target is None else [target],
        period=period,
        legal_entity_id=entity,
        project_id=project,
        record_id=record,
        approved_at=_aware(approved),
    )


def _different(rows: list[tuple], duplicated: set[str]) -> list[Candidate]:
    """Classify DIFFERENT's rows: one side only, or the kinds of difference of a pair."""
    found: list[Candidate] = []
    for row in rows:
        s_key, t_key = row[0], row[12]
        key = s_key if s_key is not None else t_key
        if key in duplicated:
            continue
        source = None if s_key is None else Side(*row[1:6])
        target = None if t_key is None else Side(*row[13:18])
        if target is None:
            found.append(_candidate(BreakKind.MISSING_IN_TARGET, key, source, None, row[6:11]))
        elif source is None:
            found.append(_candidate(BreakKind.MISSING_IN_SOURCE, key, None, target, row[18:23]))
        else:
            if source.status != target.status and source.status and target.status:
                found.append(_candidate(BreakKind.STATUS_MISMATCH, key, source, target, row[6:11]))
            if (source.amount, source.quantity, source.currency) != (
                target.amount,
                target.quantity,
                target.currency,
            ):
                found.append(_candidate(BreakKind.AMOUNT_MISMATCH, key, source, target, row[6:11]))
    return found


def _duplicates(*, run_id: int, pair: str, keys: list[str]) -> list[Candidate]:
    """A duplicate break per key, with every target record and the source's, by index."""
    by_key: dict[str, Candidate] = {}
    for start in range(0, len(keys), DUPLICATED_CHUNK):
        chunk = keys[start : start + DUPLICATED_CHUNK]
        sql = DUPLICATED.format(keys=", ".join(["%s"] * len(chunk)))
        for side, key, *values in _query(sql, [run_id, pair, *chunk]):
            found = by_key.setdefault(
                key,
                _candidate(
                    BreakKind.DUPLICATE,
                    key,
                    None,
                    None,
                    (values[5], values[6], values[7], None, None),
                ),
            )
            record = Side(*values[0:5])
            if side == "s":
                found.source = record
                found.record_id, found.approved_at = values[8], _aware(values[9])
            else:
                found.targets.append(record)
    return list(by_key.values())


def differences_find(*, run_id: int, pair: str) -> list[Candidate]:
    """Every difference between the pair's staged sides (see the module docstring)."""
    both = [run_id, pair]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        duplicated = sorted(key for (key,) in _query(DUPLICATE_KEYS, both))
        rows = _query(DIFFERENT, [*both, *both, True, True])
    return [
        *_different(rows, set(duplicated)),
        *_duplicates(run_id=run_id, pair=pair, keys=duplicated),
    ]
