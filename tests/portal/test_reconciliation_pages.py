"""The Reconciliation area: runs with totals on both sides and breaks, one run's breaks
filtered and exported, a run on demand."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from reconciliation.models import BreakKind, ReconciliationBreak, ReconciliationRun
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def run():
    made = ReconciliationRun.objects.create(
        trigger=ReconciliationRun.Trigger.NIGHTLY,
        pairs=["time"],
        status=ReconciliationRun.Status.SUCCEEDED,
        started_at=timezone.now(),
        finished_at=timezone.now(),
        totals={
            "time": {
                "source": {"EUR": {"count": 12, "quantity": "96.00", "amount": "9600.00"}},
                "target": {"EUR": {"count": 11, "quantity": "88.00", "amount": "8800.00"}},
            }
        },
        break_counts={"time": {"missing_in_target": {"explained": 0, "unexplained": 1}}},
    )
    entity = f.LegalEntityFactory(code="LB-NL")
    ReconciliationBreak.objects.create(
        run=made,
        pair="time",
        kind=BreakKind.MISSING_IN_TARGET,
        record_key="recon:time:KT-TE-7:missing_in_target",
        source_external_id="KT-TE-7",
        amount=Decimal("800.00"),
        currency="EUR",
        difference=Decimal("-800.00"),
        period="2026-10",
        legal_entity=entity,
    )
    ReconciliationBreak.objects.create(
        run=made,
        pair="time",
        kind=BreakKind.DUPLICATE,
        record_key="recon:time:KT-TE-8:duplicate",
        source_external_id="KT-TE-8",
        target_external_ids=["901", "902"],
        amount=Decimal("100.00"),
        currency="EUR",
        explained=True,
        explanation="open exception item 5",
        period="2026-10",
    )
    return made


def test_the_runs_page_shows_both_sides_and_the_breaks(client, role_user, run):
    client.force_login(role_user("executive"))
    page = client.get("/reconciliation/").content.decode()
    section = page[page.index(f'id="run-{run.pk}"') :]
    assert "9600.00" in section
    assert "8800.00" in section
    assert '<span class="status-bad">1</span>' in section  # one new break
    assert 'id="run-now"' not in page  # the executive reads, finance acts


def test_a_runs_breaks_filter_and_export(client, role_user, run):
    client.force_login(role_user("finance"))
    page = client.get(f"/reconciliation/runs/{run.pk}/", {"kind": "duplicate"}).content.decode()
    assert "KT-TE-8" in page
    assert "901, 902" in page
    assert "KT-TE-7" not in page
    new = client.get(f"/reconciliation/runs/{run.pk}/", {"explained": "no"}).content.decode()
    assert "KT-TE-7" in new
    assert "KT-TE-8" not in new

    exported = client.get(f"/reconciliation/runs/{run.pk}/", {"format": "csv"})
    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    assert rows[0][:3] == ["Pair", "Kind", "Source id"]
    assert sorted(r[2] for r in rows[1:]) == ["KT-TE-7", "KT-TE-8"]
    assert [r[7] for r in rows[1:] if r[2] == "KT-TE-7"] == ["800.00"]


def test_finance_runs_one_on_demand_and_a_bad_period_is_refused(
    client, role_user, eager_celery, monkeypatch
):
    asked = []

    def fake_run(**kwargs):
        asked.append(kwargs)
        return ReconciliationRun.objects.create(
            trigger=kwargs["trigger"], period=kwargs["period"], started_at=timezone.now()
        )

    monkeypatch.setattr("reconciliation.runs.reconciliation_run", fake_run)
    client.force_login(role_user("finance"))

    answer = client.post(
        "/reconciliation/act/", {"action": "run", "period": "2026-10", "pair": "time"}
    )
    assert answer.status_code == 302
    assert asked == [{"trigger": "on_demand", "period": "2026-10", "pairs": ["time"]}]

    refused = client.post(
        "/reconciliation/act/", {"action": "run", "period": "October"}, follow=True
    )
    assert "Not run: a period is YYYY-MM" in refused.content.decode()
    unknown = client.post("/reconciliation/act/", {"action": "run", "pair": "nope"}, follow=True)
    assert "Not run: no pair" in unknown.content.decode()
    assert len(asked) == 1


def test_the_finance_board_counts_the_latest_runs_new_breaks_and_links_to_them(
    client, role_user, run
):
    client.force_login(role_user("finance"))
    page = client.get("/dashboards/", {"board": "finance"}).content.decode()
    panel = page[page.index('id="panel-breaks"') :]
    panel = panel[: panel.index("</section>")]
    assert f"run {run.pk}" in panel
    assert (
        f"/reconciliation/runs/{run.pk}/?kind=missing_in_target&amp;legal_entity=LB-NL&amp;explained=no"
        in panel
    )
    assert "800.00" in panel
