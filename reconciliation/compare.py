"""The set-based comparison of one pair's staged rows, run by the database over the staged
table, never a Python loop over the rows. Works on PostgreSQL and SQLite (3.39+: FULL OUTER
JOIN); amounts and quantities are integers, so equal is exact.

- `staged_rows_attribute`: target rows without a key take the key of the source row with the
  same natural `match` (else `unkeyed:<their id>`), so a hand-made second record is seen as a
  duplicate of the one it copies.
- `staged_totals`: count, quantity and amount of the required rows per side and currency.
- `differences_find`: every difference, as Candidates (kind, both sides' records and values),
  from one full outer join of the source with the target grouped by key, which returns only
  the keys that differ (a key the target holds twice is a duplicate: a duplicate hides in a
  plain join), then the duplicated keys' records by index. One statement per break kind read
  the staged rows ten times and took ~4x as long (bench/README.md, docs/decisions.md).
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

# The source, fully outer-joined to the target grouped by key; only the keys that differ come
# back: on one side only (and required there), held more than once by the target, or paired
# with a different amount, quantity, currency or status.
DIFFERENT = f"""
WITH x AS (
    SELECT "key", COUNT(*) AS n, MIN(external_id) AS external_id, MIN(amount) AS amount,
           MIN(quantity) AS quantity, MIN(currency) AS currency, MIN(status) AS status,
           MAX(CASE WHEN required THEN 1 ELSE 0 END) AS required, MIN(period) AS period,
           MIN(legal_entity_id) AS legal_entity_id, MIN(project_id) AS project_id
      FROM {T} WHERE {SCOPE} AND side = 't' GROUP BY "key")
SELECT {_COLUMNS.format(a="s")}, s.required,
       x."key", x.external_id, x.amount, x.quantity, x.currency, x.status,
       x.period, x.legal_entity_id, x.project_id, x.n
  FROM (SELECT * FROM {T} WHERE {SCOPE} AND side = 's') s
  FULL OUTER JOIN x ON x."key" = s."key"
 WHERE x.n > 1
    OR (x."key" IS NULL AND s.required = %s)
    OR (s."key" IS NULL AND x.required = 1)
    OR (s."key" IS NOT NULL AND x."key" IS NOT NULL AND (
           s.amount <> x.amount OR s.quantity <> x.quantity OR s.currency <> x.currency
        OR (s.amount IS NULL AND x.amount IS NOT NULL)
        OR (s.amount IS NOT NULL AND x.amount IS NULL)
        OR (s.status <> x.status AND s.status <> '' AND x.status <> '')))
"""  # noqa: S608

# Every target record under the duplicated keys (found by the key index).
DUPLICATED = f"""
SELECT "key", external_id, amount, quantity, currency, status FROM {T}
 WHERE {SCOPE} AND side = 't' AND "key" IN ({{keys}}) ORDER BY "key", external_id
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


def _different(rows: list[tuple]) -> tuple[list[Candidate], dict[str, Candidate]]:
    """Classify DIFFERENT's rows: one side only, the kinds of difference of a pair, or a
    duplicated key (whose target records `_duplicates_fill` adds)."""
    found: list[Candidate] = []
    duplicated: dict[str, Candidate] = {}
    for row in rows:
        s_key, t_key, held = row[0], row[12], row[21]
        source = None if s_key is None else Side(*row[1:6])
        target = None if t_key is None else Side(*row[13:18])
        key = s_key if s_key is not None else t_key
        if target is None:
            found.append(_candidate(BreakKind.MISSING_IN_TARGET, key, source, None, row[6:11]))
            continue
        target_values = (*row[18:21], None, None)  # the target's period, entity, project
        if held > 1:
            values = row[6:11] if source is not None else target_values
            duplicated[key] = _candidate(BreakKind.DUPLICATE, key, source, None, values)
            continue
        if source is None:
            found.append(_candidate(BreakKind.MISSING_IN_SOURCE, key, None, target, target_values))
            continue
        if source.status != target.status and source.status and target.status:
            found.append(_candidate(BreakKind.STATUS_MISMATCH, key, source, target, row[6:11]))
        if (source.amount, source.quantity, source.currency) != (
            target.amount,
            target.quantity,
            target.currency,
        ):
            found.append(_candidate(BreakKind.AMOUNT_MISMATCH, key, source, target, row[6:11]))
    return found, duplicated


def _duplicates_fill(*, run_id: int, pair: str, duplicated: dict[str, Candidate]) -> None:
    keys = sorted(duplicated)
    for start in range(0, len(keys), DUPLICATED_CHUNK):
        chunk = keys[start : start + DUPLICATED_CHUNK]
        sql = DUPLICATED.format(keys=", ".join(["%s"] * len(chunk)))
        for key, *side in _query(sql, [run_id, pair, *chunk]):
            duplicated[key].targets.append(Side(*side))


def differences_find(*, run_id: int, pair: str) -> list[Candidate]:
    """Every difference between the pair's staged sides (see the module docstring)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        rows = _query(DIFFERENT, [run_id, pair, run_id, pair, True])
    found, duplicated = _different(rows)
    _duplicates_fill(run_id=run_id, pair=pair, duplicated=duplicated)
    return [*found, *duplicated.values()]
