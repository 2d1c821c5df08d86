"""The dashboards: each role's board, the scope filters, the records behind a figure, CSV."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from reconciliation.rollup import time_rollup_refresh
from sync.models.transactions import ApprovalStatus
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def leaks():
    """Two entities' approved time, worked 60 days ago and never invoiced."""
    old = timezone.localdate() - dt.timedelta(days=60)
    uk = f.LegalEntityFactory(code="LB-UK")
    nl = f.LegalEntityFactory(code="LB-NL")
    worker = f.WorkerFactory(legal_entity=uk, cost_rate=Decimal("9317.53"))
    made = {}
    for entity, code, hours in ((uk, "UK-1", "10"), (nl, "NL-1", "4")):
        project = f.ProjectFactory(code=code, legal_entity=entity, customer__legal_entity=entity)
        made[code] = f.TimeEntryFactory(
            project=project,
            worker=worker,
            hours=Decimal(hours),
            bill_rate=Decimal("150.00"),
            work_date=old,
            status=ApprovalStatus.POSTED,
            psa_id=f"te-{code}",
        )
    time_rollup_refresh()
    return made


def _signed_in(client, role_user, role: str):
    client.force_login(role_user(role))
    return client


def test_each_role_lands_on_its_board(client, role_user):
    for role, board in (
        ("executive", "Executive"),
        ("pmo", "PMO"),
        ("integration_ops", "Integration ops"),
    ):
        _signed_in(client, role_user, role)
        page = client.get("/dashboards/")
        assert page.status_code == 200
        assert f'aria-current="page">{board}</a>' in page.content.decode()


def test_the_leakage_panel_shows_each_entitys_money_and_narrows_to_one(client, role_user, leaks):
    _signed_in(client, role_user, "executive")

    every = client.get("/dashboards/", {"board": "finance"}).content.decode()
    assert "1,500.00" in every  # LB-UK: 10 h x 150.00
    assert "600.00" in every  # LB-NL: 4 h x 150.00
    only_nl = client.get("/dashboards/", {"board": "finance", "legal_entity": "LB-NL"})
    body = only_nl.content.decode()
    assert "600.00" in body
    assert "1,500.00" not in body
    assert "9317.53" not in body  # no cost rate on any board
    assert "9,317.53" not in body


def test_a_bar_links_to_the_records_behind_it_and_they_export(client, role_user, leaks):
    _signed_in(client, role_user, "executive")
    records = client.get(
        "/dashboards/records/",
        {"cause": "unbilled_time", "legal_entity": "LB-UK", "currency": "EUR"},
    )
    assert records.status_code == 200
    body = records.content.decode()
    assert leaks["UK-1"].psa_id in body
    assert leaks["NL-1"].psa_id not in body

    exported = client.get(
        "/dashboards/records/",
        {"cause": "unbilled_time", "legal_entity": "LB-UK", "format": "csv"},
    )
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[0][0] == "PSA id"
    assert "Cost rate" not in rows[0]
    assert [r[0] for r in rows[1:]] == [leaks["UK-1"].psa_id]
    assert Decimal(rows[1][rows[0].index("Amount")]) == Decimal("1500")


def test_every_board_table_exports_as_csv(client, role_user, leaks):
    _signed_in(client, role_user, "finance")
    exported = client.get("/dashboards/", {"board": "finance", "export": "leakage-by-project"})
    rows = list(csv.reader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert rows[0] == [
        "Cause",
        "Legal entity",
        "Customer",
        "Project",
        "Currency",
        "Records",
        "Amount",
    ]
    assert sorted((r[1], r[3], r[6]) for r in rows[1:]) == [
        ("LB-NL", "NL-1", "600.00"),
        ("LB-UK", "UK-1", "1,500.00"),
    ]
    assert client.get("/dashboards/", {"board": "finance", "export": "nope"}).status_code == 404


def test_bad_filters_are_explained_not_a_500(client, role_user, leaks):
    _signed_in(client, role_user, "finance")
    page = client.get("/dashboards/", {"period_from": "2026-13", "board": "finance"})
    assert page.status_code == 200
    assert "Not applied" in page.content.decode()
    backwards = client.get("/dashboards/", {"period_from": "2026-10", "period_to": "2026-01"})
    assert "The first month is after the last." in backwards.content.decode()
    for query in (
        {"cause": "nope"},
        {"time": "nope"},
        {"payments": "last month"},
        {"cause": "unbilled_time", "customer": "x"},
        {},
    ):
        answer = client.get("/dashboards/records/", query)
        assert answer.status_code == 400, query


def test_the_pmo_board_counts_time_waiting_for_approval(client, role_user):
    f.TimeEntryFactory(
        status=ApprovalStatus.SUBMITTED, hours=Decimal("3"), bill_rate=Decimal("100")
    )
    _signed_in(client, role_user, "pmo")
    body = client.get("/dashboards/", {"board": "pmo"}).content.decode()
    assert 'id="table-approval-backlog"' in body
    assert 'id="table-setup-sla"' in body
    assert "300.00" in body


def test_trends_read_the_daily_snapshots(client, role_user):
    from reconciliation.models import KpiSnapshot

    today = timezone.localdate()
    for days_ago, value in ((2, "100.00"), (1, "250.00")):
        KpiSnapshot.objects.create(
            day=today - dt.timedelta(days=days_ago),
            computed_at=timezone.now(),
            values={"unbilled_time": {"EUR": {"value": value}}, "leakage": {}},
        )
    _signed_in(client, role_user, "executive")
    body = client.get("/dashboards/", {"board": "executive"}).content.decode()
    trend = body[body.index('id="table-trend"') :]
    assert '<td>WIP EUR</td><td class="num">2</td><td class="num">250.00</td>' in trend


def test_the_ops_board_shows_queues_and_vendor_apis(client, role_user):
    from sync.pipeline.exception_items import Failure, exception_items_raise

    exception_items_raise(
        failures=[
            Failure(
                record_key="psa:time_entry:1",
                stage="validate",
                queue="time_and_expense",
                code="PROJECT_UNKNOWN",
                message="No such project.",
                money_at_risk=Decimal("80.00"),
                currency="EUR",
            )
        ]
    )
    _signed_in(client, role_user, "integration_ops")
    body = client.get("/dashboards/", {"board": "ops"}).content.decode()
    assert 'id="table-queues"' in body
    assert "80.00 EUR" in body
    assert 'id="panel-api"' in body
