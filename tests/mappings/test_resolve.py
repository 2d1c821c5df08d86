"""MappingTable: the published version effective on a record's date maps it, and says which."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.mappings.resolve import MappingTable, Resolved, TableVersion

JAN = dt.date(2026, 1, 1)
APR = dt.date(2026, 4, 1)
JUL = dt.date(2026, 7, 1)
LE = "legal-entities"


@pytest.fixture
def table() -> MappingTable:
    return MappingTable.from_rows(
        versions=[
            (11, "legal-entities", 1, JAN),
            (12, "legal-entities", 2, APR),
            (21, "tax-codes", 1, JUL),
        ],
        entries=[
            (11, "Acme UK", "LE-GB", {"country": "GB"}),
            (11, "Acme DE", "LE-DE", None),
            (12, "Acme UK", "LE-GB2", {"country": "GB"}),
            (21, "VAT20", "GB-STD", {"rate": "20.00"}),
            (99, "orphan", "entry of a version not loaded", None),
        ],
    )


@pytest.mark.parametrize(
    ("set_slug", "source", "on", "expected"),
    [
        pytest.param(LE, "Acme UK", dt.date(2025, 12, 31), None, id="before-v1"),
        pytest.param(LE, "Acme UK", JAN, ("LE-GB", 1), id="v1-first-day"),
        pytest.param(LE, "Acme UK", dt.date(2026, 3, 31), ("LE-GB", 1), id="v1-last-day"),
        pytest.param(LE, "Acme UK", APR, ("LE-GB2", 2), id="v2-first-day"),
        pytest.param(LE, "Acme UK", dt.date(2030, 1, 1), ("LE-GB2", 2), id="v2-later"),
        pytest.param(LE, "Acme DE", dt.date(2026, 2, 1), ("LE-DE", 1), id="only-in-v1"),
        pytest.param(LE, "Acme DE", APR, None, id="dropped-by-v2-is-a-miss"),
        pytest.param(LE, "acme uk", APR, None, id="exact-match-only"),
        pytest.param("tax-codes", "VAT20", JUL, ("GB-STD", 1), id="other-set"),
        pytest.param("tax-codes", "VAT20", APR, None, id="other-set-not-yet"),
        pytest.param("unknown-set", "Acme UK", APR, None, id="unknown-set"),
    ],
)
def test_a_record_resolves_with_the_version_effective_on_its_date(
    table, set_slug, source, on, expected
):
    resolved = table.lookup(set_slug, source, on)

    if expected is None:
        assert resolved is None
    else:
        target, number = expected
        assert (resolved.target_value, resolved.version_number) == (target, number)
        assert resolved.set_slug == set_slug


def test_a_resolution_carries_the_version_to_note_on_the_record(table):
    resolved = table.lookup("legal-entities", "Acme UK", APR)

    assert resolved == Resolved(
        set_slug="legal-entities",
        target_value="LE-GB2",
        attributes={"country": "GB"},
        version_id=12,
        version_number=2,
    )
    assert resolved.stamp == {"legal-entities": 2}


def test_attributes_of_a_resolution_cannot_be_changed_by_the_caller(table):
    resolved = table.lookup("tax-codes", "VAT20", JUL)

    with pytest.raises(TypeError):
        resolved.attributes["rate"] = "0.00"
    assert table.lookup("tax-codes", "VAT20", JUL).attributes == {"rate": "20.00"}


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (dt.date(2025, 6, 1), {}),
        (JAN, {"legal-entities": 1}),
        (APR, {"legal-entities": 2}),
        (JUL, {"legal-entities": 2, "tax-codes": 1}),
    ],
)
def test_versions_on_a_day_are_what_a_record_of_that_day_is_mapped_with(table, on, expected):
    assert table.versions_on(on) == expected


def test_a_miss_still_names_the_version_it_was_looked_up_in(table):
    assert table.lookup("legal-entities", "Unknown Ltd", APR) is None
    assert table.version_for("legal-entities", APR).number == 2


@pytest.mark.parametrize(
    ("source", "on", "error"),
    [
        pytest.param(42, APR, TypeError, id="int-source"),
        pytest.param("Acme UK", dt.datetime(2026, 4, 1, tzinfo=dt.UTC), TypeError, id="datetime"),
        pytest.param("Acme UK", "2026-04-01", TypeError, id="string-date"),
    ],
)
def test_a_lookup_refuses_values_that_would_silently_miss(table, source, on, error):
    with pytest.raises(error):
        table.lookup("legal-entities", source, on)


def test_two_versions_of_one_set_on_one_date_are_refused():
    with pytest.raises(ValueError, match="two versions effective on one date"):
        MappingTable(
            [
                TableVersion(set_slug="s", version_id=1, number=1, effective_from=JAN),
                TableVersion(set_slug="s", version_id=2, number=2, effective_from=JAN),
            ]
        )


@given(
    starts=st.lists(
        st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 12, 31)),
        min_size=1,
        max_size=8,
        unique=True,
    ),
    on=st.dates(min_value=dt.date(2019, 1, 1), max_value=dt.date(2031, 12, 31)),
)
def test_the_version_used_is_always_the_latest_one_effective_on_or_before_the_date(starts, on):
    table = MappingTable.from_rows(
        versions=[(n, "s", n, start) for n, start in enumerate(starts, 1)],
        entries=[(n, "x", f"target-{n}", None) for n in range(1, len(starts) + 1)],
    )

    eligible = [n for n, start in enumerate(starts, 1) if start <= on]
    expected = max(eligible, key=lambda n: starts[n - 1]) if eligible else None
    resolved = table.lookup("s", "x", on)
    assert (resolved.version_number if resolved else None) == expected
