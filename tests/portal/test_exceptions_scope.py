"""Exception items limited to the legal entities a user is assigned to (issue #15, "Roles and
data protection"): cards, list, groups, item, actions, jobs and traces all keep to them; a user
with no assignment works every entity; items of no known entity are everyone's."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from portal.exception_jobs import exception_group_job_run
from portal.exception_scope import exception_scope_for
from portal.models import ExceptionGroupJob, UserLegalEntity
from sync.pipeline.exception_summary import exception_summary_refresh
from sync.pipeline.models import ExceptionItem
from tests.portal.test_exceptions_pages import raise_items


@pytest.fixture
def firm_items():
    """Items of two entities and of none, one root cause shared by all three."""
    return {
        "LB-GB": raise_items(3, legal_entity="LB-GB", money_at_risk=Decimal("10.00")),
        "LB-NL": raise_items(2, legal_entity="LB-NL", money_at_risk=Decimal("100.00")),
        "": raise_items(1, legal_entity="", money_at_risk=Decimal("1.00")),
    }


@pytest.fixture
def finance_user(client, django_user_model):
    def make(*entities: str):
        user = django_user_model.objects.create_user(
            f"fin-{'-'.join(entities) or 'all'}", password="unused"
        )
        user.groups.add(Group.objects.get(name="finance"))
        for code in entities:
            UserLegalEntity.objects.create(user=user, legal_entity=code)
        client.force_login(user)
        return user

    return make


def _pks(items):
    return {i.pk for i in items}


@pytest.mark.django_db
def test_a_user_assigned_to_one_entity_sees_its_items_and_those_of_no_entity_only(
    client, finance_user, firm_items
):
    finance_user("LB-GB")
    page = client.get("/exceptions/")
    assert {i.pk for i in page.context["page"].items} == _pks(firm_items["LB-GB"] + firm_items[""])
    card = next(c for c in page.context["cards"] if c.queue == "time_and_expense")
    assert (card.open, card.money) == (4, [("GBP", Decimal("31.00"))])
    assert card.trend[-1] == 4
    (group,) = client.get("/exceptions/groups/").context["groups"]
    assert (group.items, group.money) == (4, [("GBP", Decimal("31.00"))])


@pytest.mark.django_db
def test_another_entitys_item_does_not_exist_for_a_scoped_user(client, finance_user, firm_items):
    finance_user("LB-GB")
    nl = firm_items["LB-NL"][0]
    assert client.get(f"/exceptions/{nl.pk}/").status_code == 404
    assert client.post(f"/exceptions/{nl.pk}/act/", {"action": "assign_me"}).status_code == 404
    nl.refresh_from_db()
    assert nl.assignee is None
    assert client.get(f"/exceptions/{firm_items['LB-GB'][0].pk}/").status_code == 200


@pytest.mark.django_db
def test_a_group_action_of_a_scoped_user_closes_only_their_entitys_items(
    client, finance_user, firm_items
):
    finance_user("LB-GB")
    root = firm_items["LB-GB"][0].root_cause
    client.post(f"/exceptions/groups/{root}/act/", {"action": "resolve", "reason": "Fixed."})
    resolved = ExceptionItem.objects.filter(status="resolved")
    assert _pks(resolved) == _pks(firm_items["LB-GB"] + firm_items[""])
    assert all(i.is_open for i in ExceptionItem.objects.filter(legal_entity="LB-NL"))


@pytest.mark.django_db
def test_a_group_job_acts_within_its_requesters_entities(finance_user, firm_items):
    from portal.exception_jobs import exception_group_job_start

    user = finance_user("LB-NL")
    job = exception_group_job_start(
        root_cause=firm_items["LB-NL"][0].root_cause,
        action="ignore",
        reason="Written off.",
        scope=exception_scope_for(user),
        user=user,
    )
    assert job.total == 3
    exception_group_job_run(job_id=job.pk)
    ignored = ExceptionItem.objects.filter(status="ignored")
    assert _pks(ignored) == _pks(firm_items["LB-NL"] + firm_items[""])
    assert ExceptionItem.objects.filter(legal_entity="LB-GB", status="open").count() == 3


@pytest.mark.django_db
def test_the_same_group_action_for_two_scopes_is_two_jobs_and_each_asks_once(
    finance_user, firm_items
):
    from portal.exception_jobs import exception_group_job_start

    root = firm_items["LB-GB"][0].root_cause
    gb, nl = finance_user("LB-GB"), finance_user("LB-NL")

    def ask(user):
        return exception_group_job_start(
            root_cause=root, action="replay", reason="", scope=exception_scope_for(user), user=user
        )

    first, other, again = ask(gb), ask(nl), ask(gb)
    assert again.pk == first.pk
    assert other.pk != first.pk
    assert (first.total, other.total) == (4, 3)
    assert ExceptionGroupJob.objects.count() == 2


@pytest.mark.django_db
def test_a_user_without_assignment_works_every_entity(client, finance_user, firm_items):
    finance_user()
    page = client.get("/exceptions/")
    assert len(page.context["page"].items) == 6
    (group,) = client.get("/exceptions/groups/").context["groups"]
    assert group.items == 6


@pytest.mark.django_db
def test_the_legal_entity_filter_narrows_the_list_and_never_widens_a_scope(
    client, finance_user, firm_items
):
    finance_user()
    page = client.get("/exceptions/?legal_entity=LB-NL")
    assert {i.pk for i in page.context["page"].items} == _pks(firm_items["LB-NL"])
    client.logout()
    finance_user("LB-GB")
    assert not client.get("/exceptions/?legal_entity=LB-NL").context["page"].items


@pytest.mark.django_db
def test_a_trace_lists_no_exception_item_of_another_entity(client, finance_user):
    (gb,) = raise_items(1, legal_entity="LB-GB", correlation_id="corr-shared")
    raise_items(1, legal_entity="LB-NL", correlation_id="corr-shared")
    finance_user("LB-GB")
    trace = client.get("/trace/corr-shared/").context["trace"]
    assert [e.pk for e in trace.exception_items] == [gb.pk]


@pytest.mark.django_db
def test_cards_of_a_scoped_user_follow_a_refresh(client, finance_user, firm_items):
    finance_user("LB-NL")
    raise_items(2, legal_entity="LB-NL", money_at_risk=Decimal("5.00"))
    exception_summary_refresh()
    card = next(
        c for c in client.get("/exceptions/").context["cards"] if c.queue == "time_and_expense"
    )
    assert (card.open, card.money) == (5, [("GBP", Decimal("211.00"))])


@pytest.mark.django_db
def test_the_demo_has_a_finance_user_limited_to_one_entity(tmp_path, settings):
    from portal.demo import DEMO_SCOPED_USERS, demo_users_ensure

    settings.DEBUG = True
    logins = demo_users_ensure(var_dir=tmp_path)
    demo_users_ensure(var_dir=tmp_path)  # a second run changes nothing
    for username, (role, entities) in DEMO_SCOPED_USERS.items():
        assert username in logins
        assignments = UserLegalEntity.objects.filter(user__username=username)
        assert sorted(assignments.values_list("legal_entity", flat=True)) == sorted(entities)
        assert Group.objects.get(name=role).user_set.filter(username=username).exists()
