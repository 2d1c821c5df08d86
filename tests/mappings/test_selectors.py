"""Selectors: the version effective on a day, and whole mapping tables in a bounded query count."""

from __future__ import annotations

import datetime as dt

import pytest

from sync.mappings import ownership_services, services
from sync.mappings.models import MappingEntry
from sync.mappings.selectors import (
    mapping_tables_load,
    mapping_versions_effective,
    ownership_book_load,
)

JAN = dt.date(2026, 1, 1)
APR = dt.date(2026, 4, 1)
JUL = dt.date(2026, 7, 1)


@pytest.fixture
def legal_entities(make_set):
    return make_set("legal-entities")


@pytest.fixture
def bulk_published(maria, reviewer):
    """`bulk_published(set, n_entries, effective_from)`: a published version of n entries."""

    def make(mapping_set, n_entries: int, effective_from: dt.date):
        draft = services.mapping_version_create_draft(mapping_set=mapping_set, user=maria)
        MappingEntry.objects.bulk_create(
            MappingEntry(version=draft, source_value=f"src-{i}", target_value=f"tgt-{i}")
            for i in range(n_entries)
        )
        services.mapping_version_submit(version=draft, user=maria)
        return services.mapping_version_publish(
            version=draft, effective_from=effective_from, user=reviewer
        )

    return make


def test_records_dated_before_and_after_a_new_version_resolve_with_the_version_of_their_date(
    legal_entities, make_published
):
    v1 = make_published(legal_entities, {"Acme UK": "LE-GB"}, JAN)
    v2 = make_published(legal_entities, {"Acme UK": "LE-GB2"}, APR, based_on=v1)
    table = mapping_tables_load()

    before = table.lookup("legal-entities", "Acme UK", dt.date(2026, 3, 31))
    after = table.lookup("legal-entities", "Acme UK", APR)

    assert (before.target_value, before.version_id, before.version_number) == ("LE-GB", v1.pk, 1)
    assert (after.target_value, after.version_id, after.version_number) == ("LE-GB2", v2.pk, 2)
    assert after.stamp == {"legal-entities": 2}


def test_a_retired_version_is_skipped_and_its_dates_fall_back_to_the_previous_version(
    legal_entities, make_published, maria
):
    make_published(legal_entities, {"Acme UK": "LE-GB"}, JAN)
    v2 = make_published(legal_entities, {"Acme UK": "LE-WRONG"}, APR)
    services.mapping_version_retire(version=v2, user=maria)

    resolved = mapping_tables_load().lookup("legal-entities", "Acme UK", JUL)

    assert (resolved.target_value, resolved.version_number) == ("LE-GB", 1)


def test_drafts_and_versions_in_review_never_map_records(
    legal_entities, make_published, make_draft, maria
):
    v1 = make_published(legal_entities, {"Acme UK": "LE-GB"}, JAN)
    draft = make_draft(legal_entities, {"Acme UK": "LE-DRAFT"}, based_on=v1)
    draft.effective_from = APR
    draft.save()
    review = make_draft(legal_entities, {"Acme UK": "LE-REVIEW"})
    services.mapping_version_submit(version=review, user=maria)

    resolved = mapping_tables_load().lookup("legal-entities", "Acme UK", JUL)

    assert resolved.target_value == "LE-GB"


def test_a_rollback_maps_records_from_its_date_with_the_old_entries(
    legal_entities, make_published, maria, reviewer
):
    v1 = make_published(legal_entities, {"Acme UK": "LE-GB"}, JAN)
    make_published(legal_entities, {"Acme UK": "LE-WRONG"}, APR)
    v3 = services.mapping_version_rollback(
        mapping_set=legal_entities, to_version=v1, effective_from=JUL, user=maria
    )
    services.mapping_version_publish(version=v3, effective_from=JUL, user=reviewer)
    table = mapping_tables_load()

    assert [
        (r.target_value, r.version_number)
        for r in (table.lookup("legal-entities", "Acme UK", day) for day in (JAN, APR, JUL))
    ] == [("LE-GB", 1), ("LE-WRONG", 2), ("LE-GB", 3)]


@pytest.mark.parametrize(
    ("n_sets", "n_versions", "n_entries"),
    [(1, 1, 1), (6, 3, 40)],
    ids=["tiny", "six-sets-three-versions-forty-entries"],
)
def test_loading_mapping_tables_takes_two_queries_whatever_their_size(
    make_set, bulk_published, django_assert_max_num_queries, n_sets, n_versions, n_entries
):
    for s in range(n_sets):
        mapping_set = make_set(f"set-{s}", kind="service_item")
        for v in range(n_versions):
            bulk_published(mapping_set, n_entries, JAN + dt.timedelta(days=30 * v))

    with django_assert_max_num_queries(2):
        table = mapping_tables_load()
        last_day = JAN + dt.timedelta(days=30 * (n_versions - 1))
        hits = [
            table.lookup(f"set-{s}", f"src-{i}", last_day)
            for s in range(n_sets)
            for i in range(n_entries)
        ]

    assert len(table.set_slugs) == n_sets
    assert all(hit is not None and hit.version_number == n_versions for hit in hits)


def test_mapping_tables_can_be_limited_to_some_sets(make_set, make_published):
    make_published(make_set("legal-entities"), {"Acme UK": "LE-GB"}, JAN)
    tax = make_set("tax-codes", kind="tax_code")
    make_published(tax, {"VAT20": "GB-STD"}, JAN)

    assert mapping_tables_load(sets=["legal-entities"]).set_slugs == {"legal-entities"}
    assert mapping_tables_load(sets=[tax]).set_slugs == {"tax-codes"}
    assert mapping_tables_load(sets=[]).set_slugs == frozenset()


def test_the_effective_version_of_each_set_on_a_day(
    make_set, make_published, django_assert_num_queries
):
    entities = make_set("legal-entities")
    v1 = make_published(entities, {"Acme UK": "LE-GB"}, JAN)
    v2 = make_published(entities, {"Acme UK": "LE-GB2"}, APR)
    tax = make_published(make_set("tax-codes", kind="tax_code"), {"VAT20": "GB-STD"}, APR)

    with django_assert_num_queries(1):
        in_march = mapping_versions_effective(on=dt.date(2026, 3, 1))
    with django_assert_num_queries(1):
        in_april = mapping_versions_effective(on=APR, kinds=["legal_entity"])
    assert in_march == {"legal-entities": v1}
    assert in_april == {"legal-entities": v2}
    assert mapping_versions_effective(on=APR) == {"legal-entities": v2, "tax-codes": tax}


def test_an_ownership_book_loads_in_one_query_and_knows_the_seeded_owners(
    db, maria, django_assert_num_queries
):
    ownership_services.ownership_rule_set(
        entity="project", owner_system="psa", effective_from=JUL, user=maria
    )

    with django_assert_num_queries(1):
        book = ownership_book_load(on=JAN)

    assert book.owner("project", "name", APR) == "erp"
    assert book.owner("project", "name", JUL) == "psa"
    assert book.owner("project", "legal_entity", JUL) == "erp"
    with pytest.raises(ValueError, match="loaded from"):
        book.owner("project", "name", dt.date(2025, 12, 31))
