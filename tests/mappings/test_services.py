"""Mapping and ownership services: lifecycle, immutability, four eyes, rollback, who did what."""

from __future__ import annotations

import datetime as dt

import pytest

from sync.audit import acting_as
from sync.errors import DomainError
from sync.mappings import ownership_services, services
from sync.mappings.errors import (
    MappingEffectiveDateTaken,
    MappingError,
    MappingFourEyesRefused,
    MappingInvalid,
    MappingTransitionRefused,
    MappingVersionEmpty,
    MappingVersionFrozen,
    OwnershipOverlap,
)
from sync.mappings.models import MappingEntry, MappingVersion, OwnershipRule
from sync.mappings.selectors import mapping_tables_load

JAN = dt.date(2026, 1, 1)
APR = dt.date(2026, 4, 1)
JUL = dt.date(2026, 7, 1)
Status = MappingVersion.Status


def _entries(version) -> dict[str, str]:
    return dict(version.entries.values_list("source_value", "target_value"))


@pytest.fixture
def legal_entities(make_set):
    return make_set("legal-entities")


# --- drafts and entries ---------------------------------------------------------------------


def test_new_drafts_are_numbered_one_after_another_per_set(make_set, make_draft):
    first_set, second_set = make_set("legal-entities"), make_set("tax-codes", kind="tax_code")

    numbers = [
        make_draft(first_set).number,
        make_draft(first_set).number,
        make_draft(second_set).number,
    ]

    assert numbers == [1, 2, 1]


def test_a_draft_based_on_a_version_starts_with_its_entries(
    legal_entities, make_published, make_draft, maria
):
    v1 = make_published(legal_entities, {"Acme UK": "LE-GB", "Acme DE": "LE-DE"}, JAN)

    v2 = make_draft(legal_entities, based_on=v1)

    assert (v2.number, v2.status, v2.based_on, v2.created_by) == (2, Status.DRAFT, v1, maria)
    assert _entries(v2) == {"Acme UK": "LE-GB", "Acme DE": "LE-DE"}
    copied = MappingEntry.history.filter(version_id=v2.pk)
    assert {(h.history_type, h.history_user, h.history_actor) for h in copied} == {
        ("+", maria, "user:maria")
    }


def test_a_draft_cannot_be_based_on_another_sets_version(make_set, make_draft, maria):
    other = make_draft(make_set("tax-codes", kind="tax_code"), {"VAT20": "GB-STD"})

    with pytest.raises(MappingError, match="not a version of"):
        services.mapping_version_create_draft(
            mapping_set=make_set("legal-entities"), based_on=other, user=maria
        )


def test_a_drafts_entries_can_be_added_changed_and_deleted(legal_entities, make_draft, maria):
    draft = make_draft(legal_entities, {"Acme UK": "LE-GB", "Acme DE": "LE-DE"})

    services.mapping_entry_set(
        version=draft,
        source_value="Acme UK",
        target_value="LE-GB2",
        attributes={"country": "GB"},
        user=maria,
    )
    removed = services.mapping_entry_delete(version=draft, source_value="Acme DE", user=maria)
    removed_again = services.mapping_entry_delete(version=draft, source_value="Acme DE", user=maria)

    assert _entries(draft) == {"Acme UK": "LE-GB2"}
    assert draft.entries.get().attributes == {"country": "GB"}
    assert (removed, removed_again) == (True, False)
    assert sorted(
        MappingEntry.history.filter(version_id=draft.pk).values_list("history_type", flat=True)
    ) == ["+", "+", "-", "~"]


def test_setting_an_entry_to_the_values_it_has_writes_nothing(legal_entities, make_draft, maria):
    draft = make_draft(legal_entities, {"Acme UK": "LE-GB"})

    services.mapping_entry_set(
        version=draft, source_value="Acme UK", target_value="LE-GB", user=maria
    )

    assert MappingEntry.history.filter(version_id=draft.pk).count() == 1


def test_an_entry_without_a_target_is_refused_as_invalid(legal_entities, make_draft, maria):
    draft = make_draft(legal_entities)

    with pytest.raises(MappingInvalid) as refused:
        services.mapping_entry_set(
            version=draft, source_value="Acme UK", target_value="", user=maria
        )

    assert "target_value" in refused.value.message_dict
    assert isinstance(refused.value, DomainError)


# --- immutability -----------------------------------------------------------------------------


@pytest.fixture
def version_in(legal_entities, make_draft, maria, reviewer):
    """`version_in(status)`: a version with entry Acme UK → LE-GB, moved to `status`
    (maria drafts and submits it, the reviewer publishes it)."""

    def make(status: str) -> MappingVersion:
        version = make_draft(legal_entities, {"Acme UK": "LE-GB"})
        if status == Status.DRAFT:
            return version
        services.mapping_version_submit(version=version, user=maria)
        if status == Status.IN_REVIEW:
            return version
        services.mapping_version_publish(version=version, effective_from=JAN, user=reviewer)
        if status == Status.RETIRED:
            services.mapping_version_retire(version=version, user=maria)
        return version

    return make


FROZEN = [Status.IN_REVIEW, Status.PUBLISHED, Status.RETIRED]
ENTRY_WRITES = {
    "add": lambda v, u: services.mapping_entry_set(
        version=v, source_value="Acme FR", target_value="LE-FR", user=u
    ),
    "change": lambda v, u: services.mapping_entry_set(
        version=v, source_value="Acme UK", target_value="LE-XX", user=u
    ),
    "delete": lambda v, u: services.mapping_entry_delete(version=v, source_value="Acme UK", user=u),
}


@pytest.mark.parametrize("status", FROZEN)
@pytest.mark.parametrize("write", ENTRY_WRITES)
def test_entries_of_a_submitted_published_or_retired_version_cannot_change(
    version_in, maria, status, write
):
    version = version_in(status)

    with pytest.raises(MappingVersionFrozen):
        ENTRY_WRITES[write](version, maria)

    assert _entries(version) == {"Acme UK": "LE-GB"}


def test_a_version_sent_back_from_review_is_editable_again(version_in, maria, reviewer):
    version = version_in(Status.IN_REVIEW)

    services.mapping_version_send_back(version=version, user=reviewer, reason="UK is wrong")
    services.mapping_entry_set(
        version=version, source_value="Acme UK", target_value="LE-GB2", user=maria
    )

    version.refresh_from_db()
    assert (version.status, version.submitted_by) == (Status.DRAFT, None)
    assert "Sent back by user:omar: UK is wrong" in version.notes
    assert _entries(version) == {"Acme UK": "LE-GB2"}


# --- lifecycle --------------------------------------------------------------------------------


def test_a_version_is_drafted_reviewed_published_and_retired_with_who_did_each_step(
    version_in, maria, reviewer
):
    version = version_in(Status.DRAFT)

    services.mapping_version_submit(version=version, user=maria)
    services.mapping_version_publish(version=version, effective_from=APR, user=reviewer)
    services.mapping_version_retire(version=version, user=reviewer)

    version.refresh_from_db()
    assert version.status == Status.RETIRED
    assert (version.created_by, version.submitted_by, version.published_by) == (
        maria,
        maria,
        reviewer,
    )
    assert version.effective_from == APR
    assert version.published_at is not None
    assert version.retired_at is not None
    steps = version.history.order_by("history_id").values_list("status", "history_actor")
    assert list(steps) == [
        ("draft", "user:maria"),
        ("in_review", "user:maria"),
        ("published", "user:omar"),
        ("retired", "user:omar"),
    ]


def test_a_step_taken_by_the_system_is_attributed_to_the_acting_run(version_in):
    version = version_in(Status.IN_REVIEW)

    with acting_as("run:7"):
        services.mapping_version_publish(version=version, effective_from=JAN, user=None)

    last = version.history.order_by("-history_id").first()
    assert (last.status, last.history_user, last.history_actor) == ("published", None, "run:7")


@pytest.mark.parametrize(
    ("status", "move"),
    [
        (Status.DRAFT, "publish"),
        (Status.DRAFT, "retire"),
        (Status.DRAFT, "send_back"),
        (Status.IN_REVIEW, "submit"),
        (Status.IN_REVIEW, "retire"),
        (Status.PUBLISHED, "submit"),
        (Status.PUBLISHED, "publish"),
        (Status.PUBLISHED, "send_back"),
        (Status.RETIRED, "publish"),
        (Status.RETIRED, "retire"),
    ],
)
def test_moves_outside_the_lifecycle_are_refused_and_write_nothing(version_in, maria, status, move):
    version = version_in(status)
    calls = {
        "submit": lambda: services.mapping_version_submit(version=version, user=maria),
        "send_back": lambda: services.mapping_version_send_back(version=version, user=maria),
        "publish": lambda: services.mapping_version_publish(
            version=version, effective_from=JUL, user=maria
        ),
        "retire": lambda: services.mapping_version_retire(version=version, user=maria),
    }
    rows = version.history.count()

    with pytest.raises(MappingTransitionRefused):
        calls[move]()

    version.refresh_from_db()
    assert (version.status, version.history.count()) == (status, rows)


def test_an_empty_draft_cannot_be_submitted(legal_entities, make_draft, maria):
    draft = make_draft(legal_entities)

    with pytest.raises(MappingVersionEmpty):
        services.mapping_version_submit(version=draft, user=maria)

    draft.refresh_from_db()
    assert draft.status == Status.DRAFT


def test_a_second_published_version_on_the_same_effective_date_is_refused(
    legal_entities, make_published, make_draft, maria, reviewer
):
    make_published(legal_entities, {"Acme UK": "LE-GB"}, JAN)
    second = make_draft(legal_entities, {"Acme UK": "LE-GB2"})
    services.mapping_version_submit(version=second, user=maria)

    with pytest.raises(MappingEffectiveDateTaken):
        services.mapping_version_publish(version=second, effective_from=JAN, user=reviewer)

    second.refresh_from_db()
    assert (second.status, second.effective_from) == (Status.IN_REVIEW, None)


def test_a_retired_versions_date_can_be_used_again(legal_entities, make_published, maria):
    first = make_published(legal_entities, {"Acme UK": "LE-GB"}, JAN)
    services.mapping_version_retire(version=first, user=maria)

    again = make_published(legal_entities, {"Acme UK": "LE-GB2"}, JAN)

    assert again.status == Status.PUBLISHED


def test_publishing_does_not_retire_older_versions(legal_entities, make_published):
    v1 = make_published(legal_entities, {"Acme UK": "LE-GB"}, JAN)
    make_published(legal_entities, {"Acme UK": "LE-GB2"}, APR, based_on=v1)

    v1.refresh_from_db()
    assert v1.status == Status.PUBLISHED


def test_a_datetime_is_not_an_effective_date(version_in, maria):
    version = version_in(Status.IN_REVIEW)

    with pytest.raises(MappingInvalid):
        services.mapping_version_publish(
            version=version, effective_from=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), user=maria
        )


def test_a_published_version_cannot_be_edited_through_the_update_service(version_in, maria):
    version = version_in(Status.PUBLISHED)

    with pytest.raises(MappingVersionFrozen):
        services.mapping_version_update(
            version=version, effective_from=APR, notes="moved", user=maria
        )


# --- four eyes ---------------------------------------------------------------------------------


@pytest.fixture
def eve(django_user_model):
    """A third mapping admin, so that each way of authoring a version can be tried alone."""
    return django_user_model.objects.create_user(username="eve", password=None)


def _in_review_by_eve(legal_entities, eve):
    version = services.mapping_version_create_draft(mapping_set=legal_entities, user=eve)
    for source, target in {"Acme UK": "LE-GB", "Acme DE": "LE-DE"}.items():
        services.mapping_entry_set(
            version=version, source_value=source, target_value=target, user=eve
        )
    return services.mapping_version_submit(version=version, user=eve)


def test_the_person_who_created_a_version_cannot_publish_it(legal_entities, maria, eve):
    version = services.mapping_version_create_draft(mapping_set=legal_entities, user=maria)
    services.mapping_entry_set(
        version=version, source_value="Acme UK", target_value="LE-GB", user=eve
    )
    services.mapping_version_submit(version=version, user=eve)

    with pytest.raises(MappingFourEyesRefused, match="user:maria created it"):
        services.mapping_version_publish(version=version, effective_from=JAN, user=maria)


def test_the_person_who_submitted_a_version_cannot_publish_it(legal_entities, maria, eve):
    version = services.mapping_version_create_draft(mapping_set=legal_entities, user=eve)
    services.mapping_entry_set(
        version=version, source_value="Acme UK", target_value="LE-GB", user=eve
    )
    services.mapping_version_submit(version=version, user=maria)

    with pytest.raises(MappingFourEyesRefused, match="user:maria submitted it"):
        services.mapping_version_publish(version=version, effective_from=JAN, user=maria)


@pytest.mark.parametrize("write", [*ENTRY_WRITES, "add on their behalf"])
def test_a_person_who_only_edited_an_entry_cannot_publish_the_version(
    legal_entities, maria, eve, write
):
    version = services.mapping_version_create_draft(mapping_set=legal_entities, user=eve)
    for source, target in {"Acme UK": "LE-GB", "Acme DE": "LE-DE"}.items():
        services.mapping_entry_set(
            version=version, source_value=source, target_value=target, user=eve
        )
    if write == "add on their behalf":
        with acting_as("user:maria"):  # e.g. a job run for maria, with no request user
            ENTRY_WRITES["add"](version, None)
    else:
        ENTRY_WRITES[write](version, maria)
    services.mapping_version_submit(version=version, user=eve)

    with pytest.raises(MappingFourEyesRefused, match="user:maria edited entries of it"):
        services.mapping_version_publish(version=version, effective_from=JAN, user=maria)


def test_a_second_mapping_admin_can_publish_what_another_drafted_and_submitted(
    legal_entities, eve, reviewer
):
    version = _in_review_by_eve(legal_entities, eve)

    services.mapping_version_publish(version=version, effective_from=JAN, user=reviewer)

    version.refresh_from_db()
    assert (version.status, version.created_by, version.submitted_by, version.published_by) == (
        Status.PUBLISHED,
        eve,
        eve,
        reviewer,
    )


def test_a_publish_refused_by_four_eyes_writes_nothing(legal_entities, eve):
    version = _in_review_by_eve(legal_entities, eve)
    rows = version.history.count()

    with pytest.raises(MappingFourEyesRefused) as refused:
        services.mapping_version_publish(version=version, effective_from=JAN, user=eve)

    version.refresh_from_db()
    assert (version.status, version.effective_from, version.published_by) == (
        Status.IN_REVIEW,
        None,
        None,
    )
    assert (version.published_at, version.history.count()) == (None, rows)
    assert isinstance(refused.value, DomainError)
    assert "another mapping admin must publish it" in str(refused.value)


# --- rollback ---------------------------------------------------------------------------------


def _mapped_on(day: dt.date) -> tuple[str, int]:
    resolved = mapping_tables_load().lookup("legal-entities", "Acme UK", day)
    return resolved.target_value, resolved.version_number


def test_a_persons_rollback_waits_in_review_until_a_second_admin_publishes_it(
    legal_entities, make_published, maria, reviewer
):
    v1 = make_published(legal_entities, {"Acme UK": "LE-GB", "Acme DE": "LE-DE"}, JAN)
    v2 = make_published(legal_entities, {"Acme UK": "LE-WRONG"}, APR, based_on=None)

    v3 = services.mapping_version_rollback(
        mapping_set=legal_entities, to_version=v1, effective_from=JUL, user=maria
    )

    assert (v3.number, v3.status, v3.effective_from, v3.based_on) == (
        3,
        Status.IN_REVIEW,
        JUL,
        v1,
    )
    assert (v3.created_by, v3.submitted_by, v3.published_by) == (maria, maria, None)
    assert _entries(v3) == {"Acme UK": "LE-GB", "Acme DE": "LE-DE"}
    assert "Rollback to version 1" in v3.notes
    assert _mapped_on(JUL) == ("LE-WRONG", 2)

    services.mapping_version_publish(version=v3, effective_from=v3.effective_from, user=reviewer)

    assert _mapped_on(JUL) == ("LE-GB", 3)
    assert _mapped_on(APR) == ("LE-WRONG", 2)
    # Nothing before it was rewritten: history stays linear.
    for version, entries in (
        (v1, {"Acme UK": "LE-GB", "Acme DE": "LE-DE"}),
        (v2, {"Acme UK": "LE-WRONG"}),
    ):
        version.refresh_from_db()
        assert version.status == Status.PUBLISHED
        assert _entries(version) == entries


def test_the_person_who_asked_for_a_rollback_cannot_publish_it(
    legal_entities, make_published, reviewer
):
    v1 = make_published(legal_entities, {"Acme UK": "LE-GB"}, JAN)
    make_published(legal_entities, {"Acme UK": "LE-WRONG"}, APR)
    v3 = services.mapping_version_rollback(
        mapping_set=legal_entities, to_version=v1, effective_from=JUL, user=reviewer
    )

    with pytest.raises(MappingFourEyesRefused):
        services.mapping_version_publish(version=v3, effective_from=JUL, user=reviewer)

    v3.refresh_from_db()
    assert v3.status == Status.IN_REVIEW
    assert _mapped_on(JUL) == ("LE-WRONG", 2)


def test_a_rollback_by_the_system_is_published_at_once(legal_entities, make_published):
    v1 = make_published(legal_entities, {"Acme UK": "LE-GB"}, JAN)
    make_published(legal_entities, {"Acme UK": "LE-WRONG"}, APR)

    with acting_as("run:7"):
        v3 = services.mapping_version_rollback(
            mapping_set=legal_entities, to_version=v1, effective_from=JUL, user=None
        )

    assert (v3.status, v3.effective_from, v3.based_on, v3.published_by) == (
        Status.PUBLISHED,
        JUL,
        v1,
        None,
    )
    assert _mapped_on(JUL) == ("LE-GB", 3)


def test_a_rollback_onto_a_taken_date_writes_nothing(legal_entities, make_published, maria):
    v1 = make_published(legal_entities, {"Acme UK": "LE-GB"}, JAN)
    make_published(legal_entities, {"Acme UK": "LE-WRONG"}, APR)

    with pytest.raises(MappingEffectiveDateTaken):
        services.mapping_version_rollback(
            mapping_set=legal_entities, to_version=v1, effective_from=APR, user=maria
        )

    assert legal_entities.versions.count() == 2


def test_a_rollback_to_a_version_never_published_is_refused(legal_entities, make_draft, maria):
    draft = make_draft(legal_entities, {"Acme UK": "LE-GB"})

    with pytest.raises(MappingError, match="never published"):
        services.mapping_version_rollback(
            mapping_set=legal_entities, to_version=draft, effective_from=JUL, user=maria
        )


# --- ownership rules ----------------------------------------------------------------------------


def _rules(entity: str) -> list[tuple]:
    return list(
        OwnershipRule.objects.filter(entity=entity)
        .order_by("field", "effective_from")
        .values_list("field", "owner_system", "effective_from", "effective_to")
    )


def test_setting_a_new_owner_from_a_date_ends_the_open_ended_rule_on_that_date(db, maria):
    ownership_services.ownership_rule_set(
        entity="engagement", owner_system="erp", effective_from=JAN, user=maria
    )

    ownership_services.ownership_rule_set(
        entity="engagement", owner_system="psa", effective_from=JUL, user=maria
    )

    assert _rules("engagement") == [("", "erp", JAN, JUL), ("", "psa", JUL, None)]
    ended = OwnershipRule.objects.get(entity="engagement", owner_system="erp")
    assert ended.history.order_by("-history_id").first().history_actor == "user:maria"


def test_setting_the_same_rule_twice_changes_nothing(db, maria):
    first = ownership_services.ownership_rule_set(
        entity="engagement", field="name", owner_system="crm", effective_from=JAN, user=maria
    )
    second = ownership_services.ownership_rule_set(
        entity="engagement", field="name", owner_system="crm", effective_from=JAN, user=maria
    )

    assert first.pk == second.pk
    assert first.history.count() == 1


def test_an_ownership_rule_overlapping_a_fixed_period_is_refused(db, maria):
    ownership_services.ownership_rule_set(
        entity="engagement",
        owner_system="erp",
        effective_from=JAN,
        effective_to=JUL,
        user=maria,
    )

    with pytest.raises(OwnershipOverlap):
        ownership_services.ownership_rule_set(
            entity="engagement", owner_system="psa", effective_from=APR, user=maria
        )

    assert _rules("engagement") == [("", "erp", JAN, JUL)]


def test_moving_a_rule_onto_another_rules_days_is_refused(db, maria):
    ownership_services.ownership_rule_set(
        entity="engagement",
        owner_system="erp",
        effective_from=JAN,
        effective_to=APR,
        user=maria,
    )
    later = ownership_services.ownership_rule_set(
        entity="engagement", owner_system="psa", effective_from=APR, user=maria
    )

    with pytest.raises(OwnershipOverlap):
        ownership_services.ownership_rule_update(
            rule=later,
            owner_system="psa",
            effective_from=dt.date(2026, 3, 1),
            effective_to=None,
            notes="",
            user=maria,
        )


def test_a_handover_to_an_invalid_owner_leaves_the_current_rule_open(db, maria):
    ownership_services.ownership_rule_set(
        entity="engagement", owner_system="erp", effective_from=JAN, user=maria
    )

    with pytest.raises(DomainError):
        ownership_services.ownership_rule_set(
            entity="engagement", owner_system="sap", effective_from=JUL, user=maria
        )

    assert _rules("engagement") == [("", "erp", JAN, None)]
