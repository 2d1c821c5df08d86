"""Money as Decimal with its currency: exact arithmetic, explicit rounding. Pure: no database.

Floats are refused everywhere (a float such as 0.1 is not the decimal the user typed), amounts in
different currencies never mix, and rounding happens only when asked for, to a currency's minor
units, with the rounding mode named by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation

from sync.errors import CurrencyMismatch

__all__ = [
    "ROUNDING_MODES",
    "CurrencyMismatch",
    "Money",
    "from_minor_units",
    "quantize",
    "to_decimal",
    "to_minor_units",
]

# Finance uses banker's rounding (ERP postings, aggregated tax) or half-up (invoice lines in
# most jurisdictions); anything else is a mistake worth an error rather than a silent choice.
ROUNDING_MODES = frozenset({ROUND_HALF_EVEN, ROUND_HALF_UP})
MAX_MINOR_UNITS = 4  # ISO 4217 has 0..4 (CLF has 4)
_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def to_decimal(value: object, *, what: str = "amount") -> Decimal:
    """Return `value` as a finite Decimal. Accepts Decimal, int and numeric str.

    Raises TypeError for float and bool (and anything else), ValueError for non-numeric text,
    NaN or infinity.
    """
    if isinstance(value, float):
        raise TypeError(
            f"{what}: float {value!r} refused; pass Decimal({str(value)!r}) or a string, "
            "since a float is not the decimal that was meant"
        )
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise TypeError(f"{what}: expected Decimal, int or str, got {type(value).__name__}")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{what}: {value!r} is not a number") from None
    if not result.is_finite():
        raise ValueError(f"{what}: {value!r} is not a finite number")
    return result


def _check_minor_units(minor_units: int) -> None:
    if isinstance(minor_units, bool) or not isinstance(minor_units, int):
        raise TypeError(f"minor units must be an int, got {type(minor_units).__name__}")
    if not 0 <= minor_units <= MAX_MINOR_UNITS:
        raise ValueError(f"minor units must be 0..{MAX_MINOR_UNITS}, got {minor_units}")


def quantize(
    amount: Decimal, currency_minor_units: int, rounding: str = ROUND_HALF_EVEN
) -> Decimal:
    """Round `amount` to `currency_minor_units` decimal places with the named rounding mode.

    `rounding` must be ROUND_HALF_EVEN (default, banker's) or ROUND_HALF_UP. Raises TypeError
    for float input, ValueError for an unknown rounding mode or minor units outside 0..4.
    """
    value = to_decimal(amount)
    _check_minor_units(currency_minor_units)
    if rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be ROUND_HALF_EVEN or ROUND_HALF_UP, got {rounding!r}")
    return value.quantize(Decimal(1).scaleb(-currency_minor_units), rounding=rounding)


def to_minor_units(amount: Decimal, currency_minor_units: int) -> int:
    """Exact integer count of minor units (cents) in `amount`, for sums that must not drift.

    Refuses (ValueError) an amount with more decimal places than the currency has: quantize
    first, so that the rounding is a visible decision and not a side effect.
    """
    value = to_decimal(amount)
    _check_minor_units(currency_minor_units)
    scaled = value.scaleb(currency_minor_units)
    if scaled != scaled.to_integral_value():
        raise ValueError(
            f"{value} has more than {currency_minor_units} decimal places; quantize it first"
        )
    return int(scaled)


def from_minor_units(units: int, currency_minor_units: int) -> Decimal:
    """The Decimal amount for an integer count of minor units, at the currency's scale."""
    if isinstance(units, bool) or not isinstance(units, int):
        raise TypeError(f"minor units amount must be an int, got {type(units).__name__}")
    _check_minor_units(currency_minor_units)
    return Decimal(units).scaleb(-currency_minor_units)


@dataclass(frozen=True, slots=True)
class Money:
    """An amount and its ISO 4217 currency code. Immutable; equal when amount and currency are.

    Construction accepts Decimal, int or numeric str and refuses float (TypeError). Addition,
    subtraction and ordering require the same currency (CurrencyMismatch otherwise).
    Multiplication by a Decimal or int is exact; round with `quantized` when a figure is final.
    """

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        # Frozen dataclass: normalising the amount needs object.__setattr__.
        object.__setattr__(self, "amount", to_decimal(self.amount, what="Money amount"))
        if not isinstance(self.currency, str) or not _CURRENCY_CODE.match(self.currency):
            raise ValueError(f"currency must be an ISO 4217 code like 'EUR', got {self.currency!r}")

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def total(cls, items: Iterable[Money], *, currency: str) -> Money:
        """Sum of `items` (zero if empty); every item must be in `currency`."""
        result = cls.zero(currency)
        for item in items:
            result = result + item
        return result

    def _same_currency(self, other: object, op: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {op} Money and {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot {op} {self.currency} and {other.currency}; convert at an FX rate first"
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same_currency(other, "add").amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same_currency(other, "subtract").amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.amount), self.currency)

    def __mul__(self, factor: Decimal | int) -> Money:
        if isinstance(factor, Money):
            raise TypeError("cannot multiply Money by Money")
        return Money(self.amount * to_decimal(factor, what="factor"), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same_currency(other, "compare").amount

    def __le__(self, other: Money) -> bool:
        return self.amount <= self._same_currency(other, "compare").amount

    def __gt__(self, other: Money) -> bool:
        return self.amount > self._same_currency(other, "compare").amount

    def __ge__(self, other: Money) -> bool:
        return self.amount >= self._same_currency(other, "compare").amount

    def quantized(self, minor_units: int, rounding: str = ROUND_HALF_EVEN) -> Money:
        """This amount rounded to `minor_units` places with the named rounding mode."""
        return Money(quantize(self.amount, minor_units, rounding), self.currency)

    def to_minor_units(self, minor_units: int) -> int:
        return to_minor_units(self.amount, minor_units)

    @classmethod
    def from_minor_units(cls, units: int, minor_units: int, *, currency: str) -> Money:
        return cls(from_minor_units(units, minor_units), currency)
