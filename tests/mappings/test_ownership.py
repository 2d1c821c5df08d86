"""Ownership in memory: who owns a field on a day, and a merge that refuses non-owners' changes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.mappings.ownership import (
    MergeResult,
    OwnershipBook,
    RefusedChange,
    Rule,
    ownership_merge,
)

EVER = dt.date(2000, 1, 1)
HANDOVER = dt.date(2026, 7, 1)
JUN = dt.date(2026, 6, 30)

BOOK = OwnershipBook(
    [
        Rule("project", "", "erp", EVER, HANDOVER),
        Rule("project", "", "psa", HANDOVER),
        Rule("project", "legal_entity", "erp", EVER),
        Rule("worker", "", "hr", EVER),
        Rule("contract", "value", "crm", EVER),
    ]
)


@pytest.mark.parametrize(
    ("entity", "field", "on", "owner"),
    [
        pytest.param("project", "name", JUN, "erp", id="entity-default-before-handover"),
        pytest.param("project", "name", HANDOVER, "psa", id="entity-default-from-handover"),
        pytest.param("project", "legal_entity", HANDOVER, "erp", id="field-rule-beats-default"),
        pytest.param("project", "", JUN, "erp", id="the-entity-itself"),
        pytest.param("worker", "manager", JUN, "hr", id="other-entity"),
        pytest.param("contract", "value", JUN, "crm", id="field-rule-without-default"),
        pytest.param("contract", "billing_model", JUN, None, id="no-rule-no-default"),
        pytest.param("invoice", "total", JUN, None, id="unknown-entity"),
        pytest.param("project", "name", dt.date(1999, 12, 31), None, id="before-any-rule"),
    ],
)
def test_the_owner_of_a_field_is_its_rule_else_the_entity_default(entity, field, on, owner):
    assert BOOK.owner(entity, field, on) == owner


def test_a_non_owners_change_is_refused_while_the_owners_change_to_the_same_record_applies():
    current = {"name": "Apollo", "legal_entity": "LE-GB", "status": "open"}

    from_psa = ownership_merge(
        entity="project",
        current=current,
        incoming={"name": "Apollo II", "legal_entity": "LE-DE", "status": "open"},
        source_system="psa",
        book=BOOK,
        on=JUN,
    )
    from_erp = ownership_merge(
        entity="project",
        current=current,
        incoming={"name": "Apollo II", "legal_entity": "LE-DE"},
        source_system="erp",
        book=BOOK,
        on=JUN,
    )

    assert from_psa == MergeResult(
        applied={},
        refused=[
            RefusedChange("name", "Apollo II", "Apollo", owner_system="erp", source_system="psa"),
            RefusedChange(
                "legal_entity", "LE-DE", "LE-GB", owner_system="erp", source_system="psa"
            ),
        ],
        unchanged=["status"],
    )
    assert from_erp.applied == {"name": "Apollo II", "legal_entity": "LE-DE"}
    assert from_erp.refused == []
    assert from_erp.merged(current) == {
        "name": "Apollo II",
        "legal_entity": "LE-DE",
        "status": "open",
    }


@pytest.mark.parametrize(
    ("source", "on", "applied", "refused"),
    [
        pytest.param("erp", JUN, {"name": "B", "legal_entity": "LE-2"}, [], id="erp-before"),
        pytest.param("psa", JUN, {}, ["name", "legal_entity"], id="psa-before"),
        pytest.param("psa", HANDOVER, {"name": "B"}, ["legal_entity"], id="psa-after"),
        pytest.param("erp", HANDOVER, {"legal_entity": "LE-2"}, ["name"], id="erp-after"),
        pytest.param("crm", HANDOVER, {}, ["name", "legal_entity"], id="crm-never"),
    ],
)
def test_ownership_follows_the_rule_in_force_on_the_day_of_the_change(source, on, applied, refused):
    result = ownership_merge(
        entity="project",
        current={"name": "A", "legal_entity": "LE-1"},
        incoming={"name": "B", "legal_entity": "LE-2"},
        source_system=source,
        book=BOOK,
        on=on,
    )

    assert result.applied == applied
    assert [r.field for r in result.refused] == refused


@pytest.mark.parametrize(
    ("entity", "current", "incoming", "applied", "refused", "unchanged"),
    [
        pytest.param("project", {}, {"name": None}, {}, [], ["name"], id="absent-counts-as-none"),
        pytest.param(
            "project", {}, {"name": "A"}, {}, ["name"], [], id="non-owner-cannot-initialise"
        ),
        pytest.param(
            "project", {"name": "A"}, {"name": "A"}, {}, [], ["name"], id="same-value-owned"
        ),
        pytest.param(
            "invoice",
            {"fee": Decimal("1.00")},
            {"fee": Decimal("1.0")},
            {},
            [],
            ["fee"],
            id="equal-decimals-are-unchanged",
        ),
        pytest.param(
            "invoice",
            {"fee": "1.00"},
            {"fee": Decimal("1.00")},
            {"fee": Decimal("1.00")},
            [],
            [],
            id="a-string-and-a-decimal-differ",
        ),
    ],
)
def test_unchanged_values_are_neither_applied_nor_refused(
    entity, current, incoming, applied, refused, unchanged
):
    result = ownership_merge(
        entity=entity,
        current=current,
        incoming=incoming,
        source_system="crm",
        book=BOOK,
        on=JUN,
    )

    assert (result.applied, [r.field for r in result.refused], result.unchanged) == (
        applied,
        refused,
        unchanged,
    )


def test_a_field_with_no_rule_and_no_entity_default_is_applied_from_any_source():
    result = ownership_merge(
        entity="contract",
        current={"billing_model": "tm", "value": Decimal("10.00")},
        incoming={"billing_model": "fixed_fee", "value": Decimal("20.00")},
        source_system="psa",
        book=BOOK,
        on=JUN,
    )

    assert result.applied == {"billing_model": "fixed_fee"}
    assert [r.field for r in result.refused] == ["value"]


def test_overlapping_rules_cannot_make_a_book():
    with pytest.raises(ValueError, match="overlap"):
        OwnershipBook([Rule("project", "", "erp", EVER), Rule("project", "", "psa", HANDOVER)])


def test_a_book_refuses_days_it_was_not_loaded_for():
    book = OwnershipBook([Rule("project", "", "psa", HANDOVER)], covers_from=HANDOVER)

    assert book.owner("project", "name", HANDOVER) == "psa"
    with pytest.raises(ValueError, match="loaded from"):
        book.owner("project", "name", JUN)


def test_a_datetime_is_not_a_day():
    with pytest.raises(TypeError):
        BOOK.owner("project", "name", dt.datetime(2026, 7, 1, tzinfo=dt.UTC))


# --- property: every incoming field lands in exactly one place; the owner always wins ------

SYSTEMS = ("crm", "psa", "hr", "erp", "billing")
FIELDS = ("a", "b", "c", "d", "e")
values = st.one_of(st.none(), st.integers(-2, 2), st.sampled_from(["x", "y"]))


@st.composite
def books(draw):
    rules = [
        Rule("thing", field, draw(st.sampled_from(SYSTEMS)), EVER)
        for field in draw(st.sets(st.sampled_from(("", *FIELDS))))
    ]
    return OwnershipBook(rules)


@given(
    book=books(),
    current=st.dictionaries(st.sampled_from(FIELDS), values),
    incoming=st.dictionaries(st.sampled_from(FIELDS), values),
    source=st.sampled_from(SYSTEMS),
)
def test_every_incoming_field_is_applied_refused_or_unchanged_exactly_once(
    book, current, incoming, source
):
    result = ownership_merge(
        entity="thing",
        current=current,
        incoming=incoming,
        source_system=source,
        book=book,
        on=JUN,
    )

    placed = [*result.applied, *(r.field for r in result.refused), *result.unchanged]
    assert sorted(placed) == sorted(incoming)
    for field, value in incoming.items():
        owner = book.owner("thing", field, JUN)
        if current.get(field) == value:
            assert field in result.unchanged
        elif owner in (None, source):
            assert result.applied[field] == value
        else:
            assert RefusedChange(field, value, current.get(field), owner, source) in (
                result.refused
            )
    assert {**current, **result.applied} == result.merged(current)


@given(
    book=books(),
    current=st.dictionaries(st.sampled_from(FIELDS), values),
    incoming=st.dictionaries(st.sampled_from(FIELDS), values),
)
def test_the_owners_changes_are_always_applied(book, current, incoming):
    for source in SYSTEMS:
        result = ownership_merge(
            entity="thing",
            current=current,
            incoming=incoming,
            source_system=source,
            book=book,
            on=JUN,
        )
        owned = {
            f: v
            for f, v in incoming.items()
            if book.owner("thing", f, JUN) == source and current.get(f) != v
        }
        assert owned.items() <= result.applied.items()
        assert all(r.owner_system != source for r in result.refused)
