"""Model-layer guards: published mappings stay immutable whatever the write path; rules validate."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from sync.mappings import services
from sync.mappings.errors import MappingTransitionRefused, MappingVersionFrozen
from sync.mappings.models import MappingEntry, MappingSet, MappingVersion, OwnershipRule

JAN = dt.date(2026, 1, 1)
APR = dt.date(2026, 4, 1)
JUL = dt.date(2026, 7, 1)
Status = MappingVersion.Status


@pytest.fixture
def published(make_set, make_published):
    return make_published(make_set("legal-entities"), {"Acme UK": "LE-GB"}, JAN)


@pytest.fixture
def retired(published, maria):
    return services.mapping_version_retire(version=published, user=maria)


def _add(version):
    MappingEntry(version=version, source_value="Acme FR", target_value="LE-FR").save()


def _change(version):
    entry = version.entries.get()
    entry.target_value = "LE-XX"
    entry.save()


def _delete(version):
    version.entries.get().delete()


def _queryset_update(version):
    MappingEntry.objects.filter(version=version).update(target_value="LE-XX")


def _queryset_delete(version):
    MappingEntry.objects.filter(version=version).delete()


def _bulk_create(version):
    MappingEntry.objects.bulk_create(
        [MappingEntry(version=version, source_value="Acme FR", target_value="LE-FR")]
    )


def _move_entry_into(version):
    draft = MappingVersion.objects.create(mapping_set=version.mapping_set, number=99)
    entry = MappingEntry.objects.create(version=draft, source_value="Acme FR", target_value="X")
    entry.version = version
    entry.save()


WRITES = [
    _add,
    _change,
    _delete,
    _queryset_update,
    _queryset_delete,
    _bulk_create,
    _move_entry_into,
]


@pytest.mark.parametrize("fixture", ["published", "retired"])
@pytest.mark.parametrize("write", WRITES, ids=lambda w: w.__name__.strip("_"))
def test_published_entries_cannot_be_written_by_any_orm_path(request, fixture, write):
    version = request.getfixturevalue(fixture)

    with pytest.raises(MappingVersionFrozen):
        write(version)

    assert dict(version.entries.values_list("source_value", "target_value")) == {"Acme UK": "LE-GB"}


@pytest.mark.parametrize(
    ("field", "value"),
    [("effective_from", APR), ("number", 7), ("notes", "edited after publishing")],
)
def test_a_published_version_keeps_its_content(published, field, value):
    setattr(published, field, value)

    with pytest.raises(MappingVersionFrozen):
        published.save()


def test_a_published_version_cannot_be_deleted_one_by_one_or_in_bulk(published):
    with pytest.raises(MappingVersionFrozen):
        published.delete()
    with pytest.raises(MappingVersionFrozen):
        MappingVersion.objects.filter(pk=published.pk).delete()
    with pytest.raises(MappingVersionFrozen):
        MappingVersion.objects.filter(pk=published.pk).update(effective_from=APR)

    assert MappingVersion.objects.filter(pk=published.pk, effective_from=JAN).exists()


def test_a_retired_version_cannot_be_published_again_by_a_direct_save(retired):
    retired.status = Status.PUBLISHED

    with pytest.raises(MappingTransitionRefused):
        retired.save()


def test_a_new_version_must_start_as_a_draft(make_set):
    version = MappingVersion(
        mapping_set=make_set("tax-codes", kind="tax_code"),
        number=1,
        status=Status.PUBLISHED,
        effective_from=JAN,
    )

    with pytest.raises(MappingTransitionRefused):
        version.save()


def test_a_draft_can_be_deleted_with_its_entries(make_set, make_draft):
    draft = make_draft(make_set("tax-codes", kind="tax_code"), {"VAT20": "GB-STD"})

    draft.delete()

    assert not MappingEntry.objects.filter(version_id=draft.pk).exists()


def test_the_database_refuses_two_published_versions_of_a_set_on_one_date(published):
    second = MappingVersion.objects.create(mapping_set=published.mapping_set, number=2)
    MappingEntry.objects.create(version=second, source_value="a", target_value="b")
    second.status = Status.IN_REVIEW
    second.save()
    second.status, second.effective_from = Status.PUBLISHED, JAN

    with pytest.raises(ValidationError):
        second.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()


def test_a_field_map_belongs_to_a_system():
    mapping_set = MappingSet(slug="kantata-fields", name="Kantata fields", kind="field_map")

    with pytest.raises(ValidationError) as refused:
        mapping_set.clean()

    assert "system" in refused.value.message_dict


# --- ownership rules ----------------------------------------------------------------------------

D = dt.date


@pytest.mark.parametrize(
    ("existing", "new", "overlaps"),
    [
        pytest.param((D(2026, 1, 1), None), (D(2026, 7, 1), None), True, id="open-vs-open"),
        pytest.param(
            (D(2026, 1, 1), D(2026, 7, 1)), (D(2026, 7, 1), None), False, id="handover-on-end-date"
        ),
        pytest.param(
            (D(2026, 1, 1), D(2026, 7, 1)), (D(2026, 6, 30), None), True, id="one-day-overlap"
        ),
        pytest.param(
            (D(2026, 7, 1), None),
            (D(2026, 1, 1), D(2026, 7, 1)),
            False,
            id="ends-where-next-starts",
        ),
        pytest.param(
            (D(2026, 7, 1), None), (D(2026, 1, 1), D(2026, 7, 2)), True, id="ends-a-day-late"
        ),
        pytest.param(
            (D(2026, 3, 1), D(2026, 4, 1)), (D(2026, 1, 1), None), True, id="new-covers-existing"
        ),
        pytest.param(
            (D(2026, 1, 1), None), (D(2026, 3, 1), D(2026, 4, 1)), True, id="new-inside-existing"
        ),
        pytest.param(
            (D(2026, 1, 1), D(2026, 2, 1)), (D(2026, 3, 1), D(2026, 4, 1)), False, id="apart"
        ),
    ],
)
def test_overlapping_ownership_rules_are_refused(db, existing, new, overlaps):
    OwnershipRule.objects.create(
        entity="engagement",
        field="name",
        owner_system="erp",
        effective_from=existing[0],
        effective_to=existing[1],
    )
    rule = OwnershipRule(
        entity="engagement",
        field="name",
        owner_system="psa",
        effective_from=new[0],
        effective_to=new[1],
    )

    if overlaps:
        with pytest.raises(ValidationError, match="Overlaps"):
            rule.full_clean()
    else:
        rule.full_clean()


def test_rules_for_another_field_or_entity_never_overlap(db):
    OwnershipRule.objects.create(
        entity="engagement", field="", owner_system="erp", effective_from=JAN
    )

    OwnershipRule(
        entity="engagement", field="name", owner_system="crm", effective_from=JAN
    ).full_clean()
    OwnershipRule(entity="assignment_plan", owner_system="psa", effective_from=JAN).full_clean()


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"effective_from": JUL, "effective_to": JAN}, "effective_to"),
        ({"effective_from": JAN, "effective_to": JAN}, "effective_to"),
        ({"effective_from": JAN, "entity": "Time Entry"}, "entity"),
        ({"effective_from": JAN, "owner_system": "sap"}, "owner_system"),
    ],
)
def test_a_malformed_rule_is_refused(db, values, field):
    rule = OwnershipRule(**{"entity": "engagement", "owner_system": "erp", **values})

    with pytest.raises(ValidationError) as refused:
        rule.full_clean()

    assert field in refused.value.message_dict
