"""On the demo firm, reconciliation reports exactly the planted faults of its pairs."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import call_command

from reconciliation import runs
from reconciliation.models import ReconciliationBreak, ReconciliationRun
from sync.integrations.registry import source_connector_for
from sync.pipeline.models import ExceptionItem, InboxItem
from tests.reconciliation.conftest import firm_sync

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

# Planted faults that keep approved PSA time out of the ERP, each naming its time entry.
ENTRY_FAULTS = {"closed_period", "invalid_task", "role_placeholder"}


def test_the_demo_firms_breaks_are_exactly_its_planted_faults_and_all_are_explained(
    monkeypatch, capsys
):
    firm = firm_sync(time_entries=5_000)  # the demo scale
    manifest = firm.manifest
    # `manage.py reconcile` reads the targets through the in-process sandbox.
    monkeypatch.setattr(
        runs,
        "source_connector_for",
        lambda connection, transport=None: source_connector_for(
            connection, transport=firm.transport_for(connection)
        ),
    )
    capsys.readouterr()
    call_command("reconcile", "--json")
    report = json.loads(capsys.readouterr().out)

    run = ReconciliationRun.objects.get(pk=report["id"])
    assert (run.status, run.trigger) == ("succeeded", "on_demand")
    assert report["scope"]["pairs"] == [
        "time",
        "workers_erp",
        "workers_psa",
        "expenses",
        "invoices",
        "payments",
    ]
    # Totals per side: every HR worker has an ERP employee; the ERP holds every approved entry
    # but the ones the planted faults keep out.
    totals = report["totals"]
    assert totals["workers_erp"]["source"] == totals["workers_erp"]["target"]
    # No planted fault in expenses, invoices or payments: the ERP holds what the PSA and
    # billing hold, and has applied the cash billing says it was paid.
    for pair in ("expenses", "invoices", "payments"):
        assert totals[pair]["source"] == totals[pair]["target"], pair
        assert totals[pair]["source"], pair
    source_entries = sum(t["count"] for t in totals["time"]["source"].values())
    target_entries = sum(t["count"] for t in totals["time"]["target"].values())
    assert source_entries - target_entries == len(report["breaks"])
    assert {b["pair"] for b in report["breaks"]} == {"time"}
    assert all(b["explained"] and b["explanation"] for b in report["breaks"])
    breaks = list(ReconciliationBreak.objects.filter(run=run))
    # The worker pairs have no planted fault: HR, the ERP and the PSA agree on every person.
    assert not [b for b in breaks if b.pair != "time"]
    # Every break is approved time the ERP lacks, explained by the pipeline's own open item.
    assert {b.kind for b in breaks} == {"missing_in_target"}
    assert all(b.explained and "open exception item" in b.explanation for b in breaks)
    assert not ExceptionItem.objects.filter(record_key__startswith="recon:").exists()

    reported = {b.source_external_id: b for b in breaks}
    payloads = {
        str(i.external_id): i.payload
        for i in InboxItem.objects.filter(system="psa", entity="time_entries")
    }
    faults = manifest["faults"]
    expected: set[str] = set()
    for fault in faults:
        if fault["kind"] in ENTRY_FAULTS:
            entry = fault["records"][0]["id"]
            expected.add(entry)
            # The money at risk is the entry's value, in its currency.
            assert reported[entry].amount == Decimal(fault["money_at_risk"]["amount"]), fault
            assert reported[entry].currency == fault["money_at_risk"]["currency"]
    # Whole projects (entity without an ERP subsidiary) and whole workers (no cost centre):
    # the manifest counts and values the approved time each keeps out of the ERP: all of an
    # unmapped project's; a worker's on other projects from before the backlog week (the
    # backlog week's is kept out by the same fault, but the manifest leaves it to the sync).
    backlog_from = manifest["backlog_from"]
    unmapped = {
        f["records"][0]["id"] for f in faults if f["kind"] == "project_legal_entity_unmapped"
    }
    for fault in faults:
        if fault["kind"] == "project_legal_entity_unmapped":
            workspace = fault["records"][0]["id"]
            found = {e for e in reported if payloads[e]["workspace_id"] == workspace}
            counted, count = found, fault["detail"]["approved_time_entries"]
        elif fault["kind"] == "worker_missing_cost_centre":
            user = fault["detail"]["kantata_user_id"]
            found = {e for e in reported if payloads[e]["user_id"] == user}
            counted = {
                e
                for e in found
                if payloads[e]["date_performed"] < backlog_from
                and payloads[e]["workspace_id"] not in unmapped
            }
            count = fault["detail"]["unposted_time_entries"]
        else:
            continue
        assert len(counted) == count, fault
        money = fault["money_at_risk"]
        assert sum(reported[e].amount for e in counted) == Decimal(money["amount"]), fault
        assert {reported[e].currency for e in counted} <= {money["currency"]}
        expected |= found
    # Nothing reported that was not planted, and nothing planted missed.
    assert set(reported) == expected
