"""The Ownership area as mapping admins and the auditor use it: owners today by entity and field,
handovers to come, change requests proposed, submitted and published by another mapping admin
(four eyes), withdrawn; a page per key with its timeline and history; other roles get 403."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from sync.mappings import ownership_services as services
from sync.mappings.models import OwnershipChange, OwnershipRule

Status = OwnershipChange.Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(role_user):
    """`signed_in(role, name)`: a client signed in as a new user holding `role`."""

    def make(role: str, name: str) -> Client:
        client = Client()
        client.user = role_user(role, username=name)
        client.force_login(client.user)
        return client

    return make


@pytest.fixture
def maria(signed_in):
    return signed_in("mapping_admin", "maria")


@pytest.fixture
def omar(signed_in):
    return signed_in("mapping_admin", "omar")


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def engagement(today):
    """`engagement` is owned by the ERP; its `name` by the CRM, until the PSA takes it over in
    30 days (published by the system)."""
    start = today - dt.timedelta(days=100)
    services.ownership_rule_set(
        entity="engagement", owner_system="erp", effective_from=start, user=None
    )
    services.ownership_rule_set(
        entity="engagement", field="name", owner_system="crm", effective_from=start, user=None
    )
    services.ownership_rule_set(
        entity="engagement",
        field="name",
        owner_system="psa",
        effective_from=today + dt.timedelta(days=30),
        user=None,
    )


def propose(client: Client, **overrides):
    data = {
        "entity": "engagement",
        "field": "budget",
        "owner_system": "psa",
        "effective_from": "2027-01-01",
        "reason": "The PSA plans budgets from 2027.",
        **overrides,
    }
    return client.post("/ownership/changes/propose/", data)


def act(client: Client, change: OwnershipChange, action: str, **data):
    return client.post(f"/ownership/changes/{change.pk}/act/", {"action": action, **data})


def said(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def drafted(client: Client, **overrides) -> OwnershipChange:
    propose(client, **overrides)
    return OwnershipChange.objects.latest("pk")


# -- reading -----------------------------------------------------------------------------------
def test_the_area_shows_owners_today_by_entity_with_field_overrides_and_handovers_to_come(
    engagement, maria, today
):
    page = maria.get("/ownership/")

    assert page.status_code == 200
    group = next(e for e in page.context["entities"] if e.entity == "engagement")
    assert group.default.owner_system == "erp"
    assert [(r.field, r.owner_system) for r in group.fields] == [("name", "crm")]
    upcoming = [(r.entity, r.field, r.owner_system) for r in page.context["upcoming"]]
    assert ("engagement", "name", "psa") in upcoming
    html = page.content.decode()
    assert 'data-entity="engagement"' in html
    assert 'data-field="name" data-owner="crm"' in html


def test_a_key_page_shows_its_timeline_the_owner_today_and_who_changed_it(engagement, maria):
    page = maria.get("/ownership/rules/engagement/name/")

    assert page.status_code == 200
    assert [r.owner_system for r in page.context["rules"]] == ["crm", "psa"]
    assert page.context["in_force"].owner_system == "crm"
    assert [r.owner_system for r in page.context["default_rules"]] == ["erp"]
    assert {h["who"] for h in page.context["history"]} == {"system:unknown"}
    assert 'id="owner-today">Owned by <strong>CRM</strong>' in page.content.decode()


def test_a_key_that_is_not_a_canonical_name_is_not_found(maria):
    assert maria.get("/ownership/rules/Engagement/").status_code == 404


# -- the review-and-publish flow --------------------------------------------------------------
def test_a_mapping_admin_proposes_and_submits_and_another_publishes_with_history_naming_each(
    engagement, maria, omar
):
    proposed = propose(maria)
    change = OwnershipChange.objects.get()
    assert proposed.status_code == 302
    assert proposed.url == f"/ownership/changes/{change.pk}/"

    act(maria, change, "submit")
    refused = act(maria, change, "publish")
    published = act(omar, change, "publish")

    change.refresh_from_db()
    assert change.status == Status.PUBLISHED
    assert change.decided_by.username == "omar"
    assert "four eyes" in " ".join(said(maria.get(refused.url)))
    assert published.status_code == 302
    rule = OwnershipRule.objects.get(entity="engagement", field="budget")
    assert (rule.owner_system, rule.effective_from) == ("psa", dt.date(2027, 1, 1))
    page = omar.get(f"/ownership/changes/{change.pk}/")
    assert [(h["who"], h["status"]) for h in page.context["history"]] == [
        ("omar", "Published"),
        ("maria", "Submitted"),
        ("maria", "Draft"),
    ]
    assert "changes are read-only" in page.content.decode()
    assert 'value="publish"' not in page.content.decode()


def test_a_published_change_cannot_be_withdrawn_or_published_again(maria, omar):
    change = drafted(maria)
    act(maria, change, "submit")
    act(omar, change, "publish")

    again = act(omar, change, "withdraw")

    change.refresh_from_db()
    assert change.status == Status.PUBLISHED
    assert any("may not move" in m for m in said(omar.get(again.url)))


def test_a_reviewer_withdraws_a_submitted_change_with_a_note_and_no_rule_changes(maria, omar):
    change = drafted(maria)
    act(maria, change, "submit")

    act(omar, change, "withdraw", note="Not before the budget freeze.")

    change.refresh_from_db()
    assert change.status == Status.WITHDRAWN
    assert "Not before the budget freeze." in change.reason
    assert not OwnershipRule.objects.filter(entity="engagement", field="budget").exists()


def test_a_bad_proposal_shows_the_errors_beside_the_fields_and_drafts_nothing(maria):
    page = propose(maria, entity="Engagement", owner_system="sap", reason="")

    assert page.status_code == 200
    errors = page.context["propose_form"].errors
    assert {"entity", "owner_system", "reason"} <= set(errors)
    assert not OwnershipChange.objects.exists()


# -- who may do what --------------------------------------------------------------------------
def test_the_auditor_reads_every_page_sees_no_button_and_every_action_answers_403(
    engagement, maria, signed_in
):
    change = drafted(maria)
    auditor = signed_in("auditor", "audrey")

    for url in (
        "/ownership/",
        "/ownership/rules/engagement/",
        "/ownership/rules/engagement/name/",
        f"/ownership/changes/{change.pk}/",
    ):
        response = auditor.get(url)
        assert response.status_code == 200, url
        assert 'action="/ownership' not in response.content.decode(), url
    for action in ("submit", "publish", "withdraw"):
        assert act(auditor, change, action).status_code == 403, action
    assert propose(auditor).status_code == 403
    change.refresh_from_db()
    assert change.status == Status.DRAFT
    assert OwnershipChange.objects.count() == 1


@pytest.mark.parametrize("role", ["pmo", "integration_ops", "executive"])
def test_other_roles_get_403_on_the_area_and_its_actions(role, maria, signed_in):
    change = drafted(maria)
    someone = signed_in(role, f"{role}-person")

    assert someone.get("/ownership/").status_code == 403
    assert someone.get(f"/ownership/changes/{change.pk}/").status_code == 403
    assert someone.get("/ownership/rules/engagement/").status_code == 403
    assert act(someone, change, "submit").status_code == 403
    assert propose(someone).status_code == 403
