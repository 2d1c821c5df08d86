"""Model fields for finance-grade values: money, rates and quantities as Decimal, never float.

Each money column sits beside an explicit currency foreign key; `MoneyProperty` pairs the two
into a `Money` on the model (`entry.money`, `entry.bill_rate_money`).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models

from sync.money import Money


class _RefusesFloat:
    """Mixin for DecimalField: a float is a bug upstream, so it is refused, never converted."""

    def to_python(self, value):
        if isinstance(value, float):
            raise ValidationError(
                f"{self.name}: float {value!r} refused; pass a Decimal or a string",
                code="float",
            )
        return super().to_python(value)

    def get_prep_value(self, value):
        if isinstance(value, float):
            raise TypeError(f"{self.name}: float {value!r} refused; pass a Decimal or a string")
        return super().get_prep_value(value)


class MoneyField(_RefusesFloat, models.DecimalField):
    """An amount in a currency's major unit, 18 digits with 2 decimal places by default.

    Put it beside a ForeignKey to Currency and pair them with `MoneyProperty`.
    """

    def __init__(self, *args, max_digits: int = 18, decimal_places: int = 2, **kwargs) -> None:
        super().__init__(*args, max_digits=max_digits, decimal_places=decimal_places, **kwargs)


class RateField(_RefusesFloat, models.DecimalField):
    """A rate (bill rate per hour, tax percentage, FX rate): 4 decimal places by default."""

    def __init__(self, *args, max_digits: int = 18, decimal_places: int = 4, **kwargs) -> None:
        super().__init__(*args, max_digits=max_digits, decimal_places=decimal_places, **kwargs)


class QuantityField(_RefusesFloat, models.DecimalField):
    """A quantity (hours, usage units): 4 decimal places by default."""

    def __init__(self, *args, max_digits: int = 12, decimal_places: int = 4, **kwargs) -> None:
        super().__init__(*args, max_digits=max_digits, decimal_places=decimal_places, **kwargs)


class MoneyProperty:
    """Descriptor pairing an amount field and a currency FK into a `Money`.

    Reading returns None while either half is unset. Assigning a Money sets both halves
    (the currency by code; the Currency row must exist when the record is saved).
    """

    def __init__(self, *, amount: str, currency: str) -> None:
        self.amount_field = amount
        self.currency_field = currency

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        amount = getattr(instance, self.amount_field)
        code = getattr(instance, f"{self.currency_field}_id")
        if amount is None or code is None:
            return None
        if not isinstance(amount, Decimal):
            # An unsaved instance may hold an int or str that the field will coerce on save.
            amount = Decimal(amount) if not isinstance(amount, float) else amount
        return Money(amount, code)

    def __set__(self, instance, value: Money) -> None:
        if not isinstance(value, Money):
            raise TypeError(f"{self.name} must be set to a Money, got {type(value).__name__}")
        setattr(instance, self.amount_field, value.amount)
        setattr(instance, f"{self.currency_field}_id", value.currency)
