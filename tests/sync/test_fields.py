"""Money, rate and quantity fields: Decimal in, Decimal out, never float; currency kept."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from sync.encryption import EncryptedDecimalField
from sync.models import CANONICAL_MODELS, TimeEntry
from sync.models.fields import MoneyField, MoneyProperty, QuantityField, RateField
from sync.money import Money
from tests.factories import FACTORIES, CurrencyFactory, TimeEntryFactory

DECIMAL_FIELDS = (MoneyField, RateField, QuantityField, EncryptedDecimalField)

NUMERIC_FIELDS = [
    pytest.param(model, field.name, id=f"{model.__name__}.{field.name}")
    for model in CANONICAL_MODELS
    for field in model._meta.concrete_fields
    if isinstance(field, DECIMAL_FIELDS)
]
MONEY_PROPERTIES = [
    pytest.param(model, name, prop, id=f"{model.__name__}.{name}")
    for model in CANONICAL_MODELS
    for name, prop in vars(model).items()
    if isinstance(prop, MoneyProperty)
]


def test_every_money_column_has_a_money_property_beside_its_currency():
    paired = {(p.values[0], p.values[2].amount_field) for p in MONEY_PROPERTIES}
    money_columns = {
        (model, field.name)
        for model in CANONICAL_MODELS
        for field in model._meta.concrete_fields
        if isinstance(field, MoneyField | EncryptedDecimalField)
    }
    assert money_columns <= paired


@pytest.mark.parametrize(("model", "field_name"), NUMERIC_FIELDS)
def test_a_float_is_refused_on_save_naming_the_field_and_nothing_is_written(db, model, field_name):
    record = FACTORIES[model]()
    before = getattr(model.objects.get(pk=record.pk), field_name)
    setattr(record, field_name, 12.5)

    with pytest.raises(TypeError, match=re.escape(f"{field_name}: float 12.5 refused")):
        record.save()

    assert getattr(model.objects.get(pk=record.pk), field_name) == before


@pytest.mark.parametrize(("model", "field_name"), NUMERIC_FIELDS)
def test_a_float_is_refused_by_validation_naming_the_field(model, field_name):
    field = model._meta.get_field(field_name)

    with pytest.raises(ValidationError, match=re.escape(f"{field_name}: float 0.1 refused")):
        field.to_python(0.1)
    with pytest.raises(TypeError, match=field_name):
        field.get_prep_value(0.1)


@pytest.mark.parametrize(("model", "field_name"), NUMERIC_FIELDS)
def test_decimal_strings_and_integers_are_accepted(model, field_name):
    field = model._meta.get_field(field_name)

    assert field.to_python("12.50") == Decimal("12.50")
    assert field.to_python(12) == Decimal(12)


def test_a_float_is_refused_in_a_query_filter(db):
    with pytest.raises(TypeError, match="hours: float"):
        list(TimeEntry.objects.filter(hours=7.5))


@pytest.mark.parametrize(("model", "name", "prop"), MONEY_PROPERTIES)
def test_money_keeps_its_amount_and_currency_after_a_round_trip(db, model, name, prop):
    chf = CurrencyFactory(code="CHF", name="Swiss franc")
    record = FACTORIES[model]()
    # InvoiceLine and Payment must match their invoice's currency in clean(); not called here.
    setattr(record, name, Money(Decimal("1234.56"), chf.code))
    record.save()

    stored = model.objects.get(pk=record.pk)

    assert getattr(stored, name) == Money(Decimal("1234.56"), "CHF")
    assert getattr(stored, prop.currency_field) == chf
    assert isinstance(getattr(stored, name).amount, Decimal)


def test_a_money_property_is_none_until_both_halves_are_set():
    assert TimeEntry().bill_rate_money is None


def test_a_money_property_refuses_a_bare_decimal():
    with pytest.raises(TypeError, match="must be set to a Money"):
        TimeEntry().bill_rate_money = Decimal("1")


def test_hours_on_a_time_entry_keep_two_places(db):
    entry = TimeEntryFactory(hours=Decimal("7.25"))

    assert TimeEntry.objects.get(pk=entry.pk).hours == Decimal("7.25")
