"""Money: exact Decimal arithmetic in one currency, explicit rounding, exact minor units."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.errors import CurrencyMismatch
from sync.money import Money, from_minor_units, quantize, to_minor_units

D = Decimal


@pytest.mark.parametrize(
    ("amount", "minor_units", "rounding", "expected"),
    [
        ("2.345", 2, ROUND_HALF_EVEN, "2.34"),
        ("2.355", 2, ROUND_HALF_EVEN, "2.36"),
        ("2.345", 2, ROUND_HALF_UP, "2.35"),
        ("-2.345", 2, ROUND_HALF_UP, "-2.35"),
        ("-2.345", 2, ROUND_HALF_EVEN, "-2.34"),
        ("0.5", 0, ROUND_HALF_EVEN, "0"),
        ("1.5", 0, ROUND_HALF_EVEN, "2"),
        ("2.5", 0, ROUND_HALF_UP, "3"),
        ("1234.5", 0, ROUND_HALF_EVEN, "1234"),
        ("0.0005", 3, ROUND_HALF_UP, "0.001"),
        ("0.0005", 3, ROUND_HALF_EVEN, "0.000"),
        ("1.00005", 4, ROUND_HALF_EVEN, "1.0000"),
        ("10", 3, ROUND_HALF_EVEN, "10.000"),
        ("999999999999999.995", 2, ROUND_HALF_UP, "1000000000000000.00"),
    ],
)
def test_quantize_rounds_to_the_currency_minor_units_with_the_named_mode(
    amount, minor_units, rounding, expected
):
    result = quantize(D(amount), minor_units, rounding)

    assert result == D(expected)
    assert str(result) == expected  # the scale is the currency's, not whatever came in


def test_quantize_defaults_to_bankers_rounding():
    assert quantize(D("0.125"), 2) == D("0.12")


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: quantize(D("1.005"), 2, ROUND_DOWN), ValueError),
        (lambda: quantize(D("1.005"), 5), ValueError),
        (lambda: quantize(D("1.005"), -1), ValueError),
        (lambda: quantize(1.005, 2), TypeError),
        (lambda: to_minor_units(D("1.005"), 2), ValueError),
        (lambda: to_minor_units(0.1, 2), TypeError),
        (lambda: from_minor_units(1.0, 2), TypeError),
        (lambda: from_minor_units(True, 2), TypeError),
    ],
)
def test_rounding_and_minor_unit_helpers_refuse_lossy_or_float_input(call, error):
    with pytest.raises(error):
        call()


@pytest.mark.parametrize(
    ("amount", "minor_units", "units"),
    [
        ("12.34", 2, 1234),
        ("-0.01", 2, -1),
        ("1500", 0, 1500),
        ("1.234", 3, 1234),
        ("0.0001", 4, 1),
        ("12.30", 2, 1230),
        ("12.3", 2, 1230),
    ],
)
def test_minor_units_are_exact_integers_both_ways(amount, minor_units, units):
    assert to_minor_units(D(amount), minor_units) == units
    assert from_minor_units(units, minor_units) == D(amount)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (lambda: Money(D("10.10"), "EUR") + Money(D("0.20"), "EUR"), Money(D("10.30"), "EUR")),
        (lambda: Money(D("10.10"), "EUR") - Money(D("20.20"), "EUR"), Money(D("-10.10"), "EUR")),
        (lambda: Money(D("0.1"), "EUR") * 3, Money(D("0.3"), "EUR")),
        (lambda: Money(D("150.00"), "GBP") * D("7.5"), Money(D("1125.000"), "GBP")),
        (lambda: -Money(D("5"), "USD"), Money(D("-5"), "USD")),
        (lambda: abs(Money(D("-5"), "USD")), Money(D("5"), "USD")),
        (lambda: Money.total([], currency="EUR"), Money(D("0"), "EUR")),
        (
            lambda: Money.total([Money(D("0.10"), "EUR")] * 3, currency="EUR"),
            Money(D("0.30"), "EUR"),
        ),
        (lambda: Money(D("1.005"), "EUR").quantized(2, ROUND_HALF_UP), Money(D("1.01"), "EUR")),
        (lambda: Money(D("1.005"), "EUR").quantized(2), Money(D("1.00"), "EUR")),
        (lambda: Money("12.30", "EUR"), Money(D("12.3"), "EUR")),
        (lambda: Money.from_minor_units(1999, 2, currency="EUR"), Money(D("19.99"), "EUR")),
    ],
)
def test_money_arithmetic_is_exact(expression, expected):
    assert expression() == expected


def test_money_compares_within_a_currency():
    assert Money(D("1.00"), "EUR") < Money(D("1.01"), "EUR")
    assert Money(D("2"), "EUR") >= Money(D("2.00"), "EUR")


@pytest.mark.parametrize(
    "operation",
    [
        lambda a, b: a + b,
        lambda a, b: a - b,
        lambda a, b: a < b,
        lambda a, b: a >= b,
        lambda a, b: Money.total([a, b], currency="EUR"),
    ],
)
def test_money_in_different_currencies_does_not_mix(operation):
    with pytest.raises(CurrencyMismatch, match="GBP"):
        operation(Money(D("1"), "EUR"), Money(D("1"), "GBP"))


def test_money_in_different_currencies_is_never_equal():
    assert Money(D("1"), "EUR") != Money(D("1"), "GBP")


@pytest.mark.parametrize(
    "make",
    [
        lambda: Money(0.1, "EUR"),
        lambda: Money(D("1"), "EUR") * 0.5,
        lambda: 0.5 * Money(D("1"), "EUR"),
        lambda: Money(True, "EUR"),
        lambda: Money(D("1"), "EUR") * Money(D("1"), "EUR"),
    ],
)
def test_money_refuses_float_with_a_clear_message(make):
    with pytest.raises(TypeError) as raised:
        make()
    assert (
        "float" in str(raised.value) or "Money" in str(raised.value) or "bool" in str(raised.value)
    )


def test_the_float_message_says_what_to_pass_instead():
    with pytest.raises(TypeError, match=r"float 0\.1 refused; pass Decimal\('0\.1'\)"):
        Money(0.1, "EUR")


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("1", "eur"), ("1", "EURO"), ("NaN", "EUR"), ("Infinity", "EUR"), ("abc", "EUR")],
)
def test_money_refuses_bad_currency_codes_and_non_finite_amounts(amount, currency):
    with pytest.raises(ValueError):  # noqa: PT011 - the message varies by cause
        Money(amount, currency)


@given(units=st.integers(min_value=-(10**17), max_value=10**17), minor=st.integers(0, 4))
def test_minor_units_round_trip_exactly_for_any_integer(units, minor):
    assert to_minor_units(from_minor_units(units, minor), minor) == units


@given(
    amount=st.decimals(
        min_value=D("-1e15"), max_value=D("1e15"), places=2, allow_nan=False, allow_infinity=False
    )
)
def test_any_two_place_amount_survives_a_trip_through_minor_units(amount):
    assert from_minor_units(to_minor_units(amount, 2), 2) == amount


@given(
    amounts=st.lists(
        st.decimals(
            min_value=D("-1e9"), max_value=D("1e9"), places=2, allow_nan=False, allow_infinity=False
        ),
        max_size=50,
    )
)
def test_summing_minor_units_equals_the_money_total(amounts):
    total = Money.total((Money(a, "EUR") for a in amounts), currency="EUR")

    assert sum(to_minor_units(a, 2) for a in amounts) == total.to_minor_units(2)


@given(
    amount=st.decimals(
        min_value=D("-1e12"), max_value=D("1e12"), allow_nan=False, allow_infinity=False
    ),
    minor=st.integers(0, 4),
    rounding=st.sampled_from([ROUND_HALF_EVEN, ROUND_HALF_UP]),
)
def test_quantize_is_idempotent_and_moves_by_at_most_half_a_minor_unit(amount, minor, rounding):
    once = quantize(amount, minor, rounding)

    assert quantize(once, minor, rounding) == once
    assert abs(once - amount) <= D(1).scaleb(-minor) / 2
