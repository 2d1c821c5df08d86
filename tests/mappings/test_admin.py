"""Admin: sets, versions, entries and rules with their history; every action calls a service."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from sync.mappings.models import MappingEntry, MappingSet, MappingVersion, OwnershipRule

JAN = dt.date(2026, 1, 1)
JUL = dt.date(2026, 7, 1)
Status = MappingVersion.Status


def _url(model, view: str, *args) -> str:
    return reverse(f"admin:mappings_{model._meta.model_name}_{view}", args=args)


@pytest.fixture
def published(make_set, make_published):
    return make_published(make_set("legal-entities"), {"Acme UK": "LE-GB"}, JAN)


def test_every_mapping_page_opens_with_its_history(admin_client, published):
    rule = OwnershipRule.objects.first()
    pages = [
        _url(MappingSet, "changelist"),
        _url(MappingSet, "add"),
        _url(MappingSet, "change", published.mapping_set_id),
        _url(MappingSet, "history", published.mapping_set_id),
        _url(MappingVersion, "changelist"),
        _url(MappingVersion, "change", published.pk),
        _url(MappingVersion, "history", published.pk),
        _url(OwnershipRule, "changelist"),
        _url(OwnershipRule, "add"),
        _url(OwnershipRule, "change", rule.pk),
        _url(OwnershipRule, "history", rule.pk),
    ]

    for url in pages:
        assert admin_client.get(url).status_code == 200, url


def test_a_published_versions_entries_are_shown_read_only(admin_client, published):
    page = admin_client.get(_url(MappingVersion, "change", published.pk)).content.decode()

    assert "LE-GB" in page
    assert 'name="entries-0-target_value"' not in page


def test_a_drafts_entries_are_edited_through_the_services(admin_client, make_draft, published):
    draft = make_draft(published.mapping_set, based_on=published)
    entry = draft.entries.get()
    form = {
        "notes": "UK moves entity",
        "effective_from": "",
        "entries-TOTAL_FORMS": "2",
        "entries-INITIAL_FORMS": "1",
        "entries-MIN_NUM_FORMS": "0",
        "entries-MAX_NUM_FORMS": "1000",
        "entries-0-id": str(entry.pk),
        "entries-0-version": str(draft.pk),
        "entries-0-source_value": "Acme UK",
        "entries-0-target_value": "LE-GB2",
        "entries-0-attributes": "{}",
        "entries-1-id": "",
        "entries-1-version": str(draft.pk),
        "entries-1-source_value": "Acme FR",
        "entries-1-target_value": "LE-FR",
        "entries-1-attributes": '{"country": "FR"}',
    }

    response = admin_client.post(_url(MappingVersion, "change", draft.pk), form)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert dict(draft.entries.values_list("source_value", "target_value")) == {
        "Acme UK": "LE-GB2",
        "Acme FR": "LE-FR",
    }
    actors = set(
        MappingEntry.history.filter(version_id=draft.pk, history_type__in="~+")
        .exclude(history_actor="user:maria")
        .values_list("history_actor", flat=True)
    )
    assert actors == {"user:admin"}
    draft.refresh_from_db()
    assert draft.notes == "UK moves entity"


def _act(client, action: str, versions, **extra):
    return client.post(
        _url(MappingVersion, "changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [v.pk for v in versions], **extra},
    )


@pytest.fixture
def second_admin_client(client, django_user_model):
    """Another superuser ("rosa") logged in: the second pair of eyes."""
    client.force_login(django_user_model.objects.create_superuser("rosa", password=None))
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def test_review_and_publish_actions_move_a_draft_to_published(
    admin_client, second_admin_client, make_draft, published
):
    draft = make_draft(published.mapping_set, based_on=published)

    _act(admin_client, "submit", [draft])
    asked = _act(second_admin_client, "publish", [draft])
    _act(second_admin_client, "publish", [draft], apply="1", effective_from="2026-07-01")

    assert asked.status_code == 200
    assert b"effective_from" in asked.content
    draft.refresh_from_db()
    assert (draft.status, draft.effective_from, draft.published_by.username) == (
        Status.PUBLISHED,
        JUL,
        "rosa",
    )


def test_the_admin_who_drafted_a_version_is_refused_when_publishing_it(admin_client, published):
    _act(admin_client, "draft_from_selected", [published])
    draft = published.mapping_set.versions.get(number=2)
    _act(admin_client, "submit", [draft])

    response = _act(admin_client, "publish", [draft], apply="1", effective_from="2026-07-01")

    draft.refresh_from_db()
    assert (draft.status, draft.published_by) == (Status.IN_REVIEW, None)
    assert any(
        "user:admin created, submitted and edited entries of it" in m
        and "another mapping admin must publish it (four eyes)" in m
        for m in _messages(response)
    ), _messages(response)


def test_a_refused_action_is_reported_and_changes_nothing(admin_client, published):
    response = _act(admin_client, "submit", [published])

    published.refresh_from_db()
    assert published.status == Status.PUBLISHED
    assert any("may not move" in m for m in _messages(response))


def test_the_rollback_action_submits_a_copy_that_a_second_admin_publishes(
    admin_client, second_admin_client, published
):
    asked = _act(admin_client, "rollback", [published], apply="1", effective_from="2026-07-01")
    _act(admin_client, "retire", [published])

    published.refresh_from_db()
    rolled = published.mapping_set.versions.get(number=2)
    assert published.status == Status.RETIRED
    assert (rolled.status, rolled.effective_from, rolled.based_on_id) == (
        Status.IN_REVIEW,
        JUL,
        published.pk,
    )
    assert any("submitted for review" in m for m in _messages(asked))

    planned = _act(second_admin_client, "publish", [rolled])
    _act(second_admin_client, "publish", [rolled], apply="1", effective_from="2026-07-01")

    assert planned.context_data["form"].initial["effective_from"] == JUL  # the planned date
    rolled.refresh_from_db()
    assert (rolled.status, rolled.published_by.username) == (Status.PUBLISHED, "rosa")


def test_a_new_owner_added_in_the_admin_hands_over_from_the_open_ended_rule(admin_client):
    response = admin_client.post(
        _url(OwnershipRule, "add"),
        {
            "entity": "project",
            "field": "",
            "owner_system": "psa",
            "effective_from": "2026-07-01",
            "effective_to": "",
            "notes": "PSA-led delivery",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    rules = OwnershipRule.objects.filter(entity="project", field="").order_by("effective_from")
    assert [(r.owner_system, r.effective_to) for r in rules] == [("erp", JUL), ("psa", None)]
    assert rules.last().history.get().history_actor == "user:admin"


def test_an_overlapping_rule_is_refused_by_the_admin_form(admin_client):
    OwnershipRule.objects.create(
        entity="engagement", owner_system="erp", effective_from=JAN, effective_to=JUL
    )

    response = admin_client.post(
        _url(OwnershipRule, "add"),
        {
            "entity": "engagement",
            "field": "",
            "owner_system": "psa",
            "effective_from": "2026-03-01",
            "effective_to": "",
            "notes": "",
        },
    )

    assert response.status_code == 200
    assert "Overlaps" in response.content.decode()
    assert OwnershipRule.objects.filter(entity="engagement").count() == 1


def test_only_holders_of_the_publish_permission_can_publish(
    client, django_user_model, published, make_draft, maria
):
    from django.contrib.auth.models import Permission

    from sync.mappings import services

    drafter = django_user_model.objects.create_user(username="dan", is_staff=True)
    drafter.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="mappings",
            codename__in=["view_mappingversion", "change_mappingversion"],
        )
    )
    client.force_login(drafter)
    draft = make_draft(published.mapping_set, based_on=published)
    services.mapping_version_submit(version=draft, user=maria)

    _act(client, "publish", [draft], apply="1", effective_from="2026-07-01")

    draft.refresh_from_db()
    assert draft.status == Status.IN_REVIEW
    drafter.user_permissions.add(Permission.objects.get(codename="publish_mappingversion"))
    drafter = django_user_model.objects.get(pk=drafter.pk)  # drop the permission cache
    client.force_login(drafter)
    _act(client, "publish", [draft], apply="1", effective_from="2026-07-01")
    draft.refresh_from_db()
    assert draft.status == Status.PUBLISHED
