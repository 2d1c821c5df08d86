"""The Exceptions area as finance, PMO, integration ops and the auditor use it: queue cards,
the filtered list, root-cause groups, one item, and the actions on items and groups."""

from __future__ import annotations

import itertools
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from sync.pipeline.exception_items import Failure, exception_items_raise
from sync.pipeline.models import ExceptionItem

_ids = itertools.count(1)


def raise_items(n: int = 1, **values) -> list[ExceptionItem]:
    """`n` open items raised through the pipeline's own service."""
    failures = []
    for _ in range(n):
        i = next(_ids)
        fields = {
            "record_key": f"psa:time_entry:{i}",
            "stage": "validate",
            "queue": "time_and_expense",
            "code": "COST_CENTRE_MISSING",
            "message": "Worker W-1 has no cost centre, so labour cannot be costed.",
            "suggested_fix": "Set the worker's cost centre in HR.",
            "cause": "W-1",
            "money_at_risk": Decimal("100.00"),
            "currency": "GBP",
            "correlation_id": f"corr-{i}",
            **values,
        }
        failures.append(Failure(**fields))
    return exception_items_raise(failures=failures)


@pytest.fixture
def login(client, django_user_model):
    def as_role(role: str):
        user = django_user_model.objects.create_user(f"user-{role}", password="unused")
        user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        return user

    return as_role


@pytest.mark.django_db
def test_finance_sees_a_card_per_queue_with_count_money_per_currency_and_sla(client, login):
    raise_items(3, money_at_risk=Decimal("0.10"))
    raise_items(1, money_at_risk=Decimal("250.00"), currency="EUR")
    raise_items(1, money_at_risk=None, currency="")
    login("finance")
    page = client.get("/exceptions/")
    assert page.status_code == 200
    card = next(c for c in page.context["cards"] if c.queue == "time_and_expense")
    assert card.open == 5
    assert card.money == [("EUR", Decimal("250.00")), ("GBP", Decimal("0.30"))]
    assert card.without_amount == 1
    assert card.trend[-1] == 5
    assert "0.30 GBP" in page.content.decode()


@pytest.mark.django_db
def test_pmo_sees_project_set_up_only_and_no_finance_item(client, login):
    finance_item = raise_items(1)[0]
    setup_item = raise_items(1, queue="project_setup", code="PROJECT_UNKNOWN")[0]
    login("pmo")
    page = client.get("/exceptions/")
    assert [c.queue for c in page.context["cards"]] == ["project_setup"]
    assert [i.pk for i in page.context["page"].items] == [setup_item.pk]
    assert client.get(f"/exceptions/{finance_item.pk}/").status_code == 404
    assert client.get(f"/exceptions/{setup_item.pk}/").status_code == 200


@pytest.mark.django_db
def test_the_list_filters_by_url_and_refuses_a_bad_value_without_failing(client, login):
    raise_items(2, money_at_risk=Decimal("50.00"))
    big = raise_items(1, money_at_risk=Decimal("5000.00"))[0]
    login("finance")
    page = client.get("/exceptions/?queue=time_and_expense&min_amount=1000")
    assert [i.pk for i in page.context["page"].items] == [big.pk]
    bad = client.get("/exceptions/?min_amount=lots&older_than_days=-4")
    assert bad.status_code == 200
    assert "Not applied" in bad.content.decode()
    assert len(bad.context["page"].items) == 3


@pytest.mark.django_db
def test_pages_of_the_list_follow_each_other_most_money_first_without_overlap(client, login):
    for amount in range(1, 121):
        raise_items(1, money_at_risk=Decimal(amount))
    raise_items(5, money_at_risk=None)
    login("finance")
    seen = []
    url = "/exceptions/"
    while url:
        page = client.get(url)
        seen += [i.money_at_risk for i in page.context["page"].items]
        nxt = page.context["next_query"]
        url = f"/exceptions/?{nxt}" if nxt else None
    amounts = [a for a in seen if a is not None]
    assert amounts == sorted(amounts, reverse=True)
    assert len(seen) == 125
    assert seen[-5:] == [None] * 5


@pytest.mark.django_db
def test_groups_gather_items_of_one_cause_with_their_money(client, login):
    raise_items(3, cause="W-1", money_at_risk=Decimal("10.05"))
    raise_items(1, cause="W-2", money_at_risk=Decimal("1.00"))
    login("finance")
    page = client.get("/exceptions/groups/")
    groups = page.context["groups"]
    assert [(g.items, g.cause, g.money) for g in groups] == [
        (3, "W-1", [("GBP", Decimal("30.15"))]),
        (1, "W-2", [("GBP", Decimal("1.00"))]),
    ]
    assert groups[0].record_kind == "time entries"
    assert "3 time entries" in page.content.decode()


@pytest.mark.django_db
def test_an_item_shows_its_payload_with_cost_rates_masked_for_pmo(client, login):
    item = raise_items(
        1,
        queue="project_setup",
        payload={"id": "u-1", "costRate": {"amount": "87.65"}, "hours": "7.5"},
    )[0]
    login("pmo")
    text = client.get(f"/exceptions/{item.pk}/").content.decode()
    assert "87.65" not in text
    assert "hours" in text
    assert "7.5" in text
    client.logout()
    login("finance")
    assert "87.65" in client.get(f"/exceptions/{item.pk}/").content.decode()


@pytest.mark.django_db
def test_finance_assigns_comments_and_resolves_with_a_reason_each_audited(client, login):
    item = raise_items(1)[0]
    user = login("finance")
    act = f"/exceptions/{item.pk}/act/"
    client.post(act, {"action": "assign_me"})
    client.post(act, {"action": "comment", "body": "HR is on it."})
    refused = client.post(act, {"action": "resolve", "reason": "  "}, follow=True)
    assert "a reason is required" in refused.content.decode()
    client.post(act, {"action": "resolve", "reason": "Cost centre set in HR."})
    item.refresh_from_db()
    assert item.status == ExceptionItem.Status.RESOLVED
    assert item.assignee == user
    assert item.comments.get().body == "HR is on it."
    users = set(item.history.values_list("history_user__username", flat=True))
    assert user.username in users
    assert item.history.filter(history_user=user, status="resolved").exists()


@pytest.mark.django_db
def test_a_whole_group_is_resolved_in_one_action(client, login):
    raise_items(4, cause="W-9")
    other = raise_items(1, cause="W-8")[0]
    login("finance")
    group = client.get("/exceptions/groups/").context["groups"][0]
    client.post(
        f"/exceptions/groups/{group.root_cause}/act/",
        {"action": "ignore", "reason": "Leaver: written off."},
    )
    assert ExceptionItem.objects.filter(status="ignored").count() == 4
    other.refresh_from_db()
    assert other.is_open


@pytest.mark.django_db
def test_the_auditor_reads_everything_sees_no_action_and_every_action_answers_403(client, login):
    item = raise_items(1)[0]
    login("auditor")
    page = client.get(f"/exceptions/{item.pk}/").content.decode()
    assert not re.search(r'name="action"', page)
    assert "does not act" in page
    groups = client.get("/exceptions/groups/")
    assert 'name="action"' not in groups.content.decode()
    assert client.post(f"/exceptions/{item.pk}/act/", {"action": "assign_me"}).status_code == 403
    root = groups.context["groups"][0].root_cause
    assert client.post(f"/exceptions/groups/{root}/act/", {"action": "replay"}).status_code == 403
    item.refresh_from_db()
    assert item.assignee is None


def test_the_role_table_names_every_queue_the_pipeline_raises_items_in():
    from portal.roles import ALL_QUEUES, QUEUES_BY_ROLE
    from sync.pipeline.models.exception_items import Queue

    assert set(ALL_QUEUES) == set(Queue.values)
    assert all(set(queues) <= set(ALL_QUEUES) for queues in QUEUES_BY_ROLE.values())


@pytest.mark.parametrize(
    ("record_key", "one", "many"),
    [
        ("psa:time_entry:1", "time entry", "time entries"),
        ("psa:stories:9", "story", "stories"),
        ("hr:Users:u-1", "user", "users"),
        ("crm:address:4", "address", "addresses"),
        ("odd", "record", "records"),
    ],
)
def test_a_group_names_its_records_in_the_number_its_count_needs(record_key, one, many):
    from sync.pipeline.exception_queries import RootCauseGroup, _record_nouns

    nouns = _record_nouns(record_key)
    group = {
        "root_cause": "r",
        "queue": "q",
        "code": "C",
        "cause": "",
        "message": "",
        "suggested_fix": "",
        "record_nouns": nouns,
        "oldest": None,
    }
    assert RootCauseGroup(items=1, **group).record_kind == one
    assert RootCauseGroup(items=2, **group).record_kind == many


def _time_entry_item(entry_id: str):
    from django.utils import timezone

    from sync.pipeline.models import Connection, InboxItem

    psa = Connection.objects.create(name="kantata", system="psa", dialect="kantata")
    payload = {
        "id": entry_id,
        "workspace_id": "101",
        "story_id": "107",
        "user_id": "272",
        "date_performed": "2026-05-22",
        "time_in_minutes": 450,
        "rate_in_cents": 12050,
        "billable": True,
        "approved": True,
        "currency": "GBP",
    }
    inbox = InboxItem.objects.create(
        connection=psa,
        system="psa",
        entity="time_entries",
        external_id=entry_id,
        payload=payload,
        payload_hash="0" * 64,
        received_at=timezone.now(),
        correlation_id="c",
    )
    item = raise_items(
        1,
        record_key=f"psa:time_entry:{entry_id}",
        queue="project_setup",
        code="PROJECT_UNKNOWN",
        payload=payload,
    )[0]
    ExceptionItem.objects.filter(pk=item.pk).update(inbox_item=inbox)
    return item


@pytest.mark.django_db
def test_before_a_replay_the_page_shows_what_it_would_post_and_that_the_erp_has_none(client, login):
    item = _time_entry_item("5501")
    login("finance")
    text = client.get(f"/exceptions/{item.pk}/").content.decode()
    assert "The target holds no record KT-TE-5501" in text
    assert "903.75 GBP" in text  # 7.5 hours at 120.50, half-up to the cent


@pytest.mark.django_db
def test_before_a_replay_the_page_warns_that_the_erp_already_holds_the_record(client, login):
    from django.utils import timezone

    from sync.pipeline.models import Connection, TargetRecord

    item = _time_entry_item("5502")
    erp = Connection.objects.create(name="netsuite", system="erp", dialect="netsuite")
    TargetRecord.objects.create(
        connection=erp,
        record_type="timeBill",
        external_id="KT-TE-5502",
        target_id="8841",
        source="pulled",
        seen_at=timezone.now(),
    )
    login("finance")
    text = client.get(f"/exceptions/{item.pk}/").content.decode()
    assert "The target already holds KT-TE-5502" in text
    assert "8841" in text
    assert "posts nothing twice" in text


@pytest.mark.django_db
def test_a_group_links_to_the_mapping_or_ownership_change_that_clears_it(client, login):
    from sync.mappings.services import mapping_set_create, mapping_version_create_draft

    legal_entities = mapping_set_create(
        slug="legal-entity", name="Legal entities", kind="legal_entity", user=None
    )
    draft = mapping_version_create_draft(mapping_set=legal_entities, user=None)
    raise_items(
        3,
        queue="mapping",
        code="LEGAL_ENTITY_UNMAPPED",
        cause="LB-NL",
        message="Legal entity LB-NL has no ERP subsidiary in the published mapping.",
    )
    raise_items(1, stage="own", code="FIELD_OWNED_ELSEWHERE", cause="time_entry.hours")
    raise_items(1)  # a cost centre in HR: no page here fixes it

    login("integration_ops")  # sees every queue, may open neither mappings nor ownership
    links = client.get("/exceptions/groups/").content.decode()
    assert "Fix (a mapping admin): map LB-NL in the legal-entity mapping" in links
    assert 'class="fix-link"' not in links

    admin = login("mapping_admin")
    admin.groups.add(Group.objects.get(name="integration_ops"))  # to see the queues too
    page = client.get("/exceptions/groups/").content.decode()
    assert (
        f'href="/mappings/versions/{draft.pk}/">Fix: map LB-NL in the legal-entity mapping</a>'
        in page
    )
    assert 'href="/ownership/rules/time_entry/hours/">Fix: review who owns time_entry hours' in page
    assert page.count('class="fix-link"') == 2
