"""After a mapping version is published, its page offers to replay the open exception groups its
new rows clear, each with count and money at risk; the button posts to the Exceptions area's
own group action and is shown only to someone who may act on that queue."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from sync.mappings.models import MappingSet, MappingVersion
from sync.mappings.services import (
    mapping_entry_set,
    mapping_version_create_draft,
    mapping_version_rollback,
    mapping_version_submit,
)
from sync.models import AccountingPeriod
from sync.pipeline.models import Connection, ExceptionItem
from tests.pipeline.test_time_posting import (  # noqa: F401 (firm is a fixture)
    entry,
    firm,
    process,
    publish_legal_entities,
)

pytestmark = pytest.mark.django_db
NOV = dt.date(2026, 11, 1)


@pytest.fixture
def erp_connection(db) -> Connection:
    return Connection.objects.create(
        name="erp", system="erp", dialect="netsuite", base_url="http://127.0.0.1:9/netsuite"
    )


@pytest.fixture
def parked(firm):  # noqa: F811
    """v2 (from Nov 1) maps DE01 only, so two entries of UK01 (Nov 3 and 4) are parked
    LEGAL_ENTITY_UNMAPPED (£900 each); a draft v3 based on v2 adds UK01 → 7 and is in review
    (`publish` makes it effective from Nov 2)."""
    v2 = publish_legal_entities(firm["admin"], {"DE01": "5"}, NOV)
    AccountingPeriod.objects.create(
        legal_entity=firm["project"].legal_entity,
        start_date=NOV,
        end_date=dt.date(2026, 11, 30),
        status="open",
    )
    process(firm, [entry(2, date_performed="2026-11-03"), entry(3, date_performed="2026-11-04")])
    v3 = mapping_version_create_draft(
        mapping_set=MappingSet.objects.get(slug="legal-entity"), based_on=v2, user=firm["admin"]
    )
    mapping_entry_set(version=v3, source_value="UK01", target_value="7", user=firm["admin"])
    mapping_version_submit(version=v3, user=firm["admin"])
    v3.refresh_from_db()
    return v3


def client_of(role_user, username: str, *roles: str) -> Client:
    user = role_user(roles[0], username=username)
    for role in roles[1:]:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


def open_items() -> list[ExceptionItem]:
    return list(ExceptionItem.objects.filter(status__in=ExceptionItem.OPEN_STATUSES))


def publish(client: Client, version: MappingVersion, day: str = "2026-11-02"):
    return client.post(
        f"/mappings/versions/{version.pk}/act/",
        {"action": "publish", "effective_from": day},
        follow=True,
    )


def test_publishing_offers_the_groups_it_clears_with_count_and_money(parked, role_user):
    (group,) = {i.root_cause for i in open_items()}

    page = publish(client_of(role_user, "omar", "mapping_admin"), parked)

    assert str(next(iter(page.context["messages"]))).startswith("v3 is published")
    assert page.redirect_chain[-1][0].endswith(f"/mappings/versions/{parked.pk}/#replay-offer")
    html = page.content.decode()
    assert "It clears 2 open exception items in 1 group: replay it below." in html
    assert f'<tr data-root-cause="{group}" data-code="LEGAL_ENTITY_UNMAPPED">' in html
    assert "<strong>UK01</strong>" in html
    assert '<td class="num">1,800.00 GBP</td>' in html
    assert "Ask finance or integration ops to replay it." in html  # a mapping admin may not
    assert reverse("exceptions-group-act", args=[group]) not in html


def test_someone_who_may_act_on_the_queue_replays_the_group_through_the_group_action(
    parked, role_user
):
    publish(client_of(role_user, "omar", "mapping_admin"), parked)
    (group,) = {i.root_cause for i in open_items()}
    both = client_of(role_user, "fiona", "mapping_admin", "finance")

    html = both.get(f"/mappings/versions/{parked.pk}/").content.decode()
    action = reverse("exceptions-group-act", args=[group])
    assert f'<form method="post" action="{action}">' in html
    assert "Replay group" in html

    both.post(action, {"action": "replay"})

    assert open_items() == []
    resolved = ExceptionItem.objects.filter(root_cause=group)
    assert {i.status for i in resolved} == {ExceptionItem.Status.RESOLVED}
    after = both.get(f"/mappings/versions/{parked.pk}/").content.decode()
    assert 'id="replay-offer-none"' in after


def test_the_auditor_reads_the_offer_and_finds_no_button(parked, role_user):
    publish(client_of(role_user, "omar", "mapping_admin"), parked)
    html = client_of(role_user, "audrey", "auditor").get(f"/mappings/versions/{parked.pk}/")
    html = html.content.decode()
    assert "<strong>UK01</strong>" in html
    assert "Replay group" not in html


def test_a_version_offers_only_the_groups_of_rows_it_adds_or_changes(parked, role_user):
    publish(client_of(role_user, "omar", "mapping_admin"), parked)
    v2 = parked.based_on  # added DE01, dropped UK01: nothing of UK01 is waiting for it

    html = client_of(role_user, "maria", "mapping_admin").get(f"/mappings/versions/{v2.pk}/")

    assert 'id="replay-offer-none"' in html.content.decode()


def test_drafts_and_versions_in_review_make_no_offer(parked, role_user):
    html = client_of(role_user, "maria", "mapping_admin").get(f"/mappings/versions/{parked.pk}/")
    assert 'id="replay-offer"' not in html.content.decode()


def test_publishing_a_rollback_copy_offers_what_it_brings_back(parked, firm, role_user):  # noqa: F811
    omar = client_of(role_user, "omar", "mapping_admin")
    publish(omar, parked)  # v3 maps UK01 from Nov 2
    v1 = firm["legal_entity_v1"]  # UK01 → 3 from Jan 1
    publish_legal_entities(firm["admin"], {"DE01": "5"}, dt.date(2026, 11, 3))  # v4 drops UK01
    process(firm, [entry(4, date_performed="2026-11-05")])  # parked again: UK01 unmapped
    copy = mapping_version_rollback(
        mapping_set=v1.mapping_set,
        to_version=v1,
        effective_from=dt.date(2026, 11, 4),
        user=firm["admin"],
    )

    page = publish(omar, copy, "2026-11-04")

    html = page.content.decode()
    # v3's two items were never replayed: the group is now three items, and v5 clears it too.
    assert "v5 is published, effective from 2026-11-04." in html
    assert "It clears 3 open exception items in 1 group: replay it below." in html
    assert "<strong>UK01</strong>" in html
    assert '<td class="num">2,700.00 GBP</td>' in html


def test_many_signatures_are_read_a_slice_at_a_time_with_the_same_totals(parked, monkeypatch):
    from sync.pipeline import mapping_clears

    whole = mapping_clears.exception_groups_of_causes(
        codes={"LEGAL_ENTITY_UNMAPPED", "CURRENCY_UNMAPPED"}, causes={"UK01", "DE01", "GBP"}
    )
    monkeypatch.setattr(mapping_clears, "SIGNATURES_PER_QUERY", 1)
    sliced = mapping_clears.exception_groups_of_causes(
        codes={"LEGAL_ENTITY_UNMAPPED", "CURRENCY_UNMAPPED"}, causes={"UK01", "DE01", "GBP"}
    )
    assert sliced == whole
    (group,) = whole
    assert (group.cause, group.items, group.money) == ("UK01", 2, [("GBP", Decimal("1800.00"))])


def test_a_user_assigned_to_legal_entities_is_offered_only_their_items():
    from sync.pipeline.exception_items import Failure, exception_items_raise
    from sync.pipeline.mapping_clears import exception_groups_of_causes

    exception_items_raise(
        failures=[
            Failure(
                record_key=f"psa:time_entry:{n}",
                stage="map",
                queue="mapping",
                code="LEGAL_ENTITY_UNMAPPED",
                message="LB-NL has no ERP subsidiary.",
                cause="LB-NL",
                legal_entity=entity,
                money_at_risk=Decimal("10.00"),
                currency="EUR",
            )
            for n, entity in ((1, "LB-NL"), (2, "LB-NL"), (3, "LB-GB"), (4, ""))
        ]
    )

    def items(entities):
        groups = exception_groups_of_causes(
            codes={"LEGAL_ENTITY_UNMAPPED"}, causes={"LB-NL"}, legal_entities=entities
        )
        return sum(g.items for g in groups)

    assert items(None) == 4
    assert items(("LB-NL",)) == 3  # its two and the one of no known entity
    assert items(("LB-GB",)) == 2
