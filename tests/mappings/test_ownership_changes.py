"""Ownership change requests: draft → submitted → published by another mapping admin (four eyes),
or withdrawn; publishing writes the rule through `ownership_rule_set`, with history naming
the people who acted."""

from __future__ import annotations

import datetime as dt

import pytest

from sync.mappings import ownership_services as services
from sync.mappings.errors import (
    OwnershipFourEyesRefused,
    OwnershipInvalid,
    OwnershipOverlap,
    OwnershipTransitionRefused,
)
from sync.mappings.models import OwnershipChange, OwnershipRule
from sync.mappings.ownership import OwnershipBook, Rule

JAN = dt.date(2026, 1, 1)
JUL = dt.date(2026, 7, 1)
Status = OwnershipChange.Status

pytestmark = pytest.mark.django_db


def _propose(user, **overrides) -> OwnershipChange:
    values = {
        "entity": "engagement",
        "field": "name",
        "owner_system": "psa",
        "effective_from": JUL,
        "reason": "The PSA names engagements from July.",
    }
    return services.ownership_change_create(**{**values, **overrides}, user=user)


def _submitted(user, **overrides) -> OwnershipChange:
    return services.ownership_change_submit(change=_propose(user, **overrides), user=user)


def _rules(entity: str = "engagement", field: str = "name") -> list[tuple]:
    return list(
        OwnershipRule.objects.filter(entity=entity, field=field)
        .order_by("effective_from")
        .values_list("owner_system", "effective_from", "effective_to")
    )


def _book_owner(on: dt.date, entity: str = "engagement", field: str = "name") -> str | None:
    rules = [
        Rule(r.entity, r.field, r.owner_system, r.effective_from, r.effective_to)
        for r in OwnershipRule.objects.filter(entity=entity)
    ]
    return OwnershipBook(rules).owner(entity, field, on)


def test_a_proposed_change_is_a_draft_that_changes_no_rule(maria):
    change = _propose(maria)

    assert change.status == Status.DRAFT
    assert change.created_by == maria
    assert _rules() == []


def test_another_mapping_admin_publishes_a_submitted_change_and_the_rule_hands_over_on_its_date(
    maria, reviewer
):
    services.ownership_rule_set(
        entity="engagement", field="name", owner_system="erp", effective_from=JAN, user=None
    )
    change = _submitted(maria)

    published = services.ownership_change_publish(change=change, user=reviewer)

    assert published.status == Status.PUBLISHED
    assert published.decided_by == reviewer
    assert _rules() == [("erp", JAN, JUL), ("psa", JUL, None)]
    assert published.rule == OwnershipRule.objects.get(effective_from=JUL)
    assert published.rule.notes.startswith(f"Ownership change {change.pk}:")
    assert _book_owner(dt.date(2026, 6, 30)) == "erp"
    assert _book_owner(JUL) == "psa"


@pytest.mark.parametrize("author", ["creator", "submitter"])
def test_the_author_of_a_change_may_not_publish_it(author, maria, reviewer):
    # maria proposes; the creator case has her submit too, the submitter case has omar submit.
    submitter = maria if author == "creator" else reviewer
    change = services.ownership_change_submit(change=_propose(maria), user=submitter)
    publisher = submitter

    with pytest.raises(OwnershipFourEyesRefused, match="another mapping admin must publish it"):
        services.ownership_change_publish(change=change, user=publisher)

    change.refresh_from_db()
    assert change.status == Status.SUBMITTED
    assert _rules() == []


def test_the_system_publishes_alone(maria):
    change = services.ownership_change_submit(change=_propose(None), user=None)

    services.ownership_change_publish(change=change, user=None)

    assert _rules() == [("psa", JUL, None)]


def test_only_a_submitted_change_is_published_and_a_published_one_is_read_only(maria, reviewer):
    draft = _propose(maria)
    with pytest.raises(OwnershipTransitionRefused):
        services.ownership_change_publish(change=draft, user=reviewer)

    published = services.ownership_change_publish(
        change=services.ownership_change_submit(change=draft, user=maria), user=reviewer
    )
    for move in (
        lambda: services.ownership_change_publish(change=published, user=reviewer),
        lambda: services.ownership_change_withdraw(change=published, user=reviewer),
        lambda: services.ownership_change_submit(change=published, user=maria),
    ):
        with pytest.raises(OwnershipTransitionRefused):
            move()
    assert _rules() == [("psa", JUL, None)]


def test_a_withdrawn_change_writes_no_rule_and_keeps_the_note(maria, reviewer):
    change = _submitted(maria)

    withdrawn = services.ownership_change_withdraw(
        change=change, user=reviewer, note="Finance keeps the names until year end."
    )

    assert withdrawn.status == Status.WITHDRAWN
    assert withdrawn.decided_by == reviewer
    assert "Withdrawn by user:omar: Finance keeps the names" in withdrawn.reason
    assert _rules() == []
    with pytest.raises(OwnershipTransitionRefused):
        services.ownership_change_publish(change=withdrawn, user=reviewer)


def test_a_change_overlapping_a_fixed_period_is_refused_on_publishing_and_nothing_is_written(
    maria, reviewer
):
    services.ownership_rule_set(
        entity="engagement",
        field="name",
        owner_system="erp",
        effective_from=JAN,
        effective_to=dt.date(2026, 12, 1),
        user=None,
    )
    change = _submitted(maria)

    with pytest.raises(OwnershipOverlap):
        services.ownership_change_publish(change=change, user=reviewer)

    change.refresh_from_db()
    assert change.status == Status.SUBMITTED
    assert change.rule is None
    assert _rules() == [("erp", JAN, dt.date(2026, 12, 1))]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"owner_system": "sap"}, "owner_system"),
        ({"entity": "Engagement"}, "entity"),
        ({"effective_to": dt.date(2026, 6, 1)}, "effective_to"),
        ({"reason": ""}, "reason"),
    ],
)
def test_a_bad_proposal_is_refused_with_the_field_named(overrides, field, maria):
    with pytest.raises(OwnershipInvalid) as refused:
        _propose(maria, **overrides)

    assert field in refused.value.message_dict
    assert not OwnershipChange.objects.exists()


def test_history_names_each_person_who_moved_the_change_and_the_rule(maria, reviewer):
    change = _submitted(maria)
    services.ownership_change_publish(change=change, user=reviewer)

    steps = [
        (h.status, h.history_user.username, h.history_actor)
        for h in change.history.order_by("history_id")
    ]
    assert steps == [
        ("draft", "maria", "user:maria"),
        ("submitted", "maria", "user:maria"),
        ("published", "omar", "user:omar"),
    ]
    rule = OwnershipRule.objects.get(entity="engagement", field="name")
    assert rule.history.get().history_actor == "user:omar"
