"""KPI arithmetic, pure: no database. Formulas and their choices are in docs/kpis.md.

Money is Decimal with its currency beside it and is never summed across currencies here;
days and hours are Decimal rounded half-up to one decimal place.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
# Age buckets of unbilled work, in days since the work was done (upper bounds, inclusive).
AGE_BUCKETS = ((30, "0-30"), (60, "31-60"), (90, "61-90"), (None, "90+"))


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def tenths(value: Decimal) -> Decimal:
    return value.quantize(TENTH, rounding=ROUND_HALF_UP)


def dso_countback(
    *, receivables: Decimal, sales_by_month: Mapping[tuple[int, int], Decimal], as_of: dt.date
) -> Decimal | None:
    """Days sales outstanding by the countback method.

    Start from `receivables` at `as_of`; walk back month by month from `as_of`'s month (counting
    only its days up to `as_of`), subtracting each month's credit sales (`sales_by_month`,
    {(year, month): amount}) and counting that month's days, until the receivables are used
    up; the last month counts the fraction of its days the remainder covers. None when there
    are no sales to count back against; 0 when nothing is receivable. Receivables older than
    every month with sales count those months in full (the DSO is then a lower bound).
    """
    if receivables <= 0:
        return Decimal(0)
    if not any(amount > 0 for amount in sales_by_month.values()):
        return None
    earliest = min(key for key, amount in sales_by_month.items() if amount > 0)
    left, days = receivables, Decimal(0)
    year, month = as_of.year, as_of.month
    while (year, month) >= earliest:
        in_month = (
            as_of.day
            if (year, month) == (as_of.year, as_of.month)
            else calendar.monthrange(year, month)[1]
        )
        sales = sales_by_month.get((year, month), Decimal(0))
        if sales >= left:
            return tenths(days + Decimal(in_month) * left / sales)
        left -= sales
        days += in_month
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return tenths(days)


def weighted_quantile(pairs: Iterable[tuple[Decimal, Decimal]], q: Decimal) -> Decimal | None:
    """The `q` quantile (0 < q ≤ 1) of values weighted by amount: the smallest value whose
    cumulative weight reaches q of the total. `pairs` are (value, weight); weights ≤ 0 are
    left out. None when there is no weight."""
    kept = sorted((value, weight) for value, weight in pairs if weight > 0)
    total = sum((weight for _, weight in kept), Decimal(0))
    if not kept:
        return None
    running = Decimal(0)
    for value, weight in kept:
        running += weight
        if running >= q * total:
            return value
    return kept[-1][0]


def age_bucket(days: int) -> str:
    for limit, label in AGE_BUCKETS:
        if limit is None or days <= limit:
            return label
    raise AssertionError("the last bucket has no limit")


@dataclass(frozen=True)
class HistogramQuantile:
    seconds: Decimal | None  # upper bound of the bucket the quantile falls in; None: no data
    beyond_last_bucket: bool = False


def histogram_quantile(cumulative: Sequence[tuple[str, int]], q: Decimal) -> HistogramQuantile:
    """The `q` quantile of a cumulative histogram ([(le, count)], Prometheus style, last "+Inf")
    as the upper bound of the bucket it falls in (a conservative estimate)."""
    total = cumulative[-1][1] if cumulative else 0
    if total == 0:
        return HistogramQuantile(None)
    wanted = q * total
    for le, count in cumulative:
        if count >= wanted:
            if le == "+Inf":
                last_finite = [b for b, _ in cumulative if b != "+Inf"]
                return HistogramQuantile(Decimal(last_finite[-1]), beyond_last_bucket=True)
            return HistogramQuantile(Decimal(le))
    return HistogramQuantile(None)


def ratio(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    """part ÷ whole to four decimal places (a rate: 0.9875), None when whole is 0."""
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
