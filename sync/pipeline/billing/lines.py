"""Invoice lines from a candidate's sources: pure, no database.

A line is every source with one `line_key` (a worker at one rate, an expense category, a
milestone, a usage unit at one price). Its amount is Σ quantity x unit amount, rounded ONCE,
half-up, to the currency's minor units (decision 102): rounding each entry first would let a
month of quarter-hours drift by cents from what the customer can recompute from the line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sync.money import quantize

# How an expense line's description starts: the ERP invoice names its service item by it.
EXPENSE_LINE_PREFIX = "Reimbursable expenses"


@dataclass(frozen=True)
class SourceLine:
    """One billed record as priced: what its line groups by and what it contributes."""

    line_key: str
    description: str
    quantity: Decimal
    unit_amount: Decimal


@dataclass(frozen=True)
class Line:
    """One invoice line: `amount` is final (rounded); `quantity` x `unit_amount` equals the
    unrounded amount when every source had the same unit amount, else quantity is 1."""

    line_key: str
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal


def lines_build(*, sources: Iterable[SourceLine], minor_units: int) -> list[Line]:
    """The lines of one candidate, in the order their keys first appear in `sources`.
    Deterministic for the same sources: a billing invoice rebuilt from them is identical."""
    grouped: dict[str, list[SourceLine]] = {}
    for source in sources:
        grouped.setdefault(source.line_key, []).append(source)
    lines = []
    for key, group in grouped.items():
        exact = sum((s.quantity * s.unit_amount for s in group), Decimal(0))
        amount = quantize(exact, minor_units, ROUND_HALF_UP)
        units = {s.unit_amount for s in group}
        if len(units) == 1:
            quantity, unit = sum((s.quantity for s in group), Decimal(0)), units.pop()
        else:
            quantity, unit = Decimal(1), amount
        lines.append(
            Line(
                line_key=key,
                description=group[0].description,
                quantity=quantity,
                unit_amount=unit,
                amount=amount,
            )
        )
    return lines


def lines_total(lines: Iterable[Line]) -> Decimal:
    """The candidate's amount: the sum of its rounded lines (no second rounding)."""
    return sum((line.amount for line in lines), Decimal(0))


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)
