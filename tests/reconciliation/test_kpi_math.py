"""KPI arithmetic on hand-made figures; each expected answer is worked from the formula."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from reconciliation.kpi_math import (
    age_bucket,
    dso_countback,
    histogram_quantile,
    ratio,
    weighted_quantile,
)

D = Decimal
AS_OF = dt.date(2026, 11, 15)  # November counts 15 days, October 31, September 30


@pytest.mark.parametrize(
    ("receivables", "sales", "expected"),
    [
        # Receivables within this month's sales: 15 days x 500 / 1,000.
        (D("500"), {(2026, 11): D("1000")}, D("7.5")),
        # Past November (1,000: 15 days) into October: 15 + 31 x 500 / 2,000 = 22.75 → 22.8.
        (D("1500"), {(2026, 11): D("1000"), (2026, 10): D("2000")}, D("22.8")),
        # A month without sales counts its days: 15 + 31 + 30 x 100 / 400 = 53.5.
        (D("1100"), {(2026, 11): D("1000"), (2026, 9): D("400")}, D("53.5")),
        # More receivable than every month sold: those months counted in full (15 + 31).
        (D("5000"), {(2026, 11): D("1000"), (2026, 10): D("1000")}, D("46.0")),
        # Nothing receivable: 0 days.
        (D("0"), {(2026, 11): D("1000")}, D("0")),
        # Overpaid (credit balance): 0 days.
        (D("-20"), {(2026, 11): D("1000")}, D("0")),
    ],
)
def test_dso_counts_back_month_by_month(receivables, sales, expected):
    assert dso_countback(receivables=receivables, sales_by_month=sales, as_of=AS_OF) == expected


def test_dso_without_any_sales_is_unknown_not_zero():
    assert dso_countback(receivables=D("10"), sales_by_month={}, as_of=AS_OF) is None
    assert (
        dso_countback(receivables=D("10"), sales_by_month={(2026, 11): D(0)}, as_of=AS_OF) is None
    )


@pytest.mark.parametrize(
    ("pairs", "q", "expected"),
    [
        # Amount-weighted median: 10 days carries 100 of 400, 20 days 300: the median is 20.
        ([(D(10), D(100)), (D(20), D(300))], D("0.5"), D(20)),
        ([(D(10), D(300)), (D(20), D(100))], D("0.5"), D(10)),
        # p90 of 5 equal weights: the 5th value (cumulative 5/5 ≥ 0.9).
        ([(D(v), D(1)) for v in (1, 2, 3, 4, 5)], D("0.9"), D(5)),
        # Zero and negative weights are left out.
        ([(D(99), D(0)), (D(7), D(5)), (D(50), D(-3))], D("0.5"), D(7)),
    ],
)
def test_weighted_quantiles_follow_the_money(pairs, q, expected):
    assert weighted_quantile(pairs, q) == expected


def test_a_weighted_quantile_of_nothing_is_unknown():
    assert weighted_quantile([], D("0.5")) is None


@pytest.mark.parametrize(
    ("days", "bucket"), [(0, "0-30"), (30, "0-30"), (31, "31-60"), (90, "61-90"), (91, "90+")]
)
def test_ages_fall_in_inclusive_buckets(days, bucket):
    assert age_bucket(days) == bucket


def test_p95_of_a_histogram_is_the_upper_bound_of_its_bucket():
    cumulative = [("0.05", 50), ("0.1", 90), ("0.25", 96), ("+Inf", 100)]
    assert histogram_quantile(cumulative, D("0.95")).seconds == D("0.25")
    beyond = histogram_quantile([("0.05", 1), ("0.1", 2), ("+Inf", 100)], D("0.95"))
    assert (beyond.seconds, beyond.beyond_last_bucket) == (D("0.1"), True)
    assert histogram_quantile([("0.05", 0), ("+Inf", 0)], D("0.95")).seconds is None


def test_a_ratio_of_nothing_is_unknown_and_otherwise_four_places():
    assert ratio(0, 0) is None
    assert ratio(2, 3) == D("0.6667")
