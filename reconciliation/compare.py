"""The set-based comparison of one pair's staged rows: one SQL statement per break kind, run by
the database over the staged table (joins, anti-joins, GROUP BY), never a Python loop over the
rows. Works on PostgreSQL and SQLite; amounts and quantities are integers, so equal is exact.

- `staged_rows_attribute`: target rows without a key take the key of the source row with the
  same natural `match` (else `unkeyed:<their id>`), so a hand-made second record is seen as a
  duplicate of the one it copies.
- `staged_totals`: count, quantity and amount of the required rows per side and currency.
- `differences_find`: every difference, as Candidates (kind, both sides' records and values).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

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

_ROW = (
    '{a}."key", {a}.external_id, {a}.amount, {a}.quantity, {a}.currency, {a}.status, '
    "{a}.period, {a}.legal_entity_id, {a}.project_id, {a}.record_id, {a}.approved_at"
)
_OTHER = (
    "{b}.run_id = {a}.run_id AND {b}.pair = {a}.pair AND {b}.side = '{side}'"
    ' AND {b}."key" = {a}."key"'
)
_ALONE = f"""NOT EXISTS (SELECT 1 FROM {T} d WHERE {_OTHER.format(a="x", b="d", side="t")}
                AND d.id <> x.id)"""  # noqa: S608

MISSING_IN_TARGET = f"""
SELECT {_ROW.format(a="s")} FROM {T} s
 WHERE s.run_id = %s AND s.pair = %s AND s.side = 's' AND s.required = %s
   AND NOT EXISTS (SELECT 1 FROM {T} x WHERE {_OTHER.format(a="s", b="x", side="t")})
"""  # noqa: S608

MISSING_IN_SOURCE = f"""
SELECT {_ROW.format(a="x")} FROM {T} x
 WHERE x.run_id = %s AND x.pair = %s AND x.side = 't' AND x.required = %s
   AND NOT EXISTS (SELECT 1 FROM {T} s WHERE {_OTHER.format(a="x", b="s", side="s")})
"""  # noqa: S608

DUPLICATE = f"""
SELECT {_ROW.format(a="x")}, s.external_id, s.amount, s.quantity, s.record_id
  FROM {T} x LEFT JOIN {T} s ON {_OTHER.format(a="x", b="s", side="s")}
 WHERE x.run_id = %s AND x.pair = %s AND x.side = 't'
   AND x."key" IN (SELECT "key" FROM {T} WHERE {SCOPE} AND side = 't'
                    GROUP BY "key" HAVING COUNT(*) > 1)
 ORDER BY x."key", x.external_id
"""  # noqa: S608

_PAIRED = f"""
SELECT {_ROW.format(a="s")}, x.external_id, x.amount, x.quantity, x.currency, x.status
  FROM {T} s JOIN {T} x ON {_OTHER.format(a="s", b="x", side="t")}
 WHERE s.run_id = %s AND s.pair = %s AND s.side = 's' AND {{condition}} AND {_ALONE}
"""  # noqa: S608

AMOUNT_MISMATCH = _PAIRED.format(
    condition="(s.amount <> x.amount OR s.quantity <> x.quantity OR s.currency <> x.currency"
    " OR (s.amount IS NULL AND x.amount IS NOT NULL)"
    " OR (s.amount IS NOT NULL AND x.amount IS NULL))"
)
STATUS_MISMATCH = _PAIRED.format(
    condition="s.status <> x.status AND s.status <> '' AND x.status <> ''"
)


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


def _one_sided(kind: str, rows: list[tuple], *, source: bool) -> list[Candidate]:
    found = []
    for (
        key,
        external_id,
        amount,
        quantity,
        currency,
        status,
        period,
        entity,
        project,
        record,
        approved,
    ) in rows:
        side = Side(external_id, amount, quantity, currency, status)
        found.append(
            Candidate(
                kind=kind,
                key=key,
                source=side if source else None,
                targets=[] if source else [side],
                period=period,
                legal_entity_id=entity,
                project_id=project,
                record_id=record,
                approved_at=_aware(approved),
            )
        )
    return found


def _paired(kind: str, rows: list[tuple]) -> list[Candidate]:
    found = []
    for (
        key,
        s_id,
        s_amount,
        s_qty,
        s_cur,
        s_status,
        period,
        entity,
        project,
        record,
        approved,
        t_id,
        t_amount,
        t_qty,
        t_cur,
        t_status,
    ) in rows:
        found.append(
            Candidate(
                kind=kind,
                key=key,
                source=Side(s_id, s_amount, s_qty, s_cur, s_status),
                targets=[Side(t_id, t_amount, t_qty, t_cur, t_status)],
                period=period,
                legal_entity_id=entity,
                project_id=project,
                record_id=record,
                approved_at=_aware(approved),
            )
        )
    return found


def _duplicates(rows: list[tuple]) -> list[Candidate]:
    by_key: dict[str, Candidate] = {}
    for (
        key,
        t_id,
        t_amount,
        t_qty,
        t_cur,
        t_status,
        period,
        entity,
        project,
        _record,
        _approved,
        s_id,
        s_amount,
        s_qty,
        s_record,
    ) in rows:
        found = by_key.get(key)
        if found is None:
            source = None if s_id is None else Side(s_id, s_amount, s_qty, t_cur)
            found = by_key[key] = Candidate(
                kind=BreakKind.DUPLICATE,
                key=key,
                source=source,
                period=period,
                legal_entity_id=entity,
                project_id=project,
                record_id=s_record,
            )
        found.targets.append(Side(t_id, t_amount, t_qty, t_cur, t_status))
    return list(by_key.values())


def differences_find(*, run_id: int, pair: str) -> list[Candidate]:
    """Every difference between the pair's staged sides, one statement per break kind."""
    both = [run_id, pair]
    return [
        *_one_sided(
            BreakKind.MISSING_IN_TARGET, _query(MISSING_IN_TARGET, [*both, True]), source=True
        ),
        *_one_sided(
            BreakKind.MISSING_IN_SOURCE, _query(MISSING_IN_SOURCE, [*both, True]), source=False
        ),
        *_duplicates(_query(DUPLICATE, [*both, *both])),
        *_paired(BreakKind.AMOUNT_MISMATCH, _query(AMOUNT_MISMATCH, both)),
        *_paired(BreakKind.STATUS_MISMATCH, _query(STATUS_MISMATCH, both)),
    ]
