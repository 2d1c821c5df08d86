"""Reconciliation finds what changed behind Ledgerbridge's back in the target, explains what is
on its way, and keeps one exception item per break across runs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType

from reconciliation.models import ReconciliationBreak
from sandbox import storage
from sync.models import ExternalRef, TimeEntry, Worker
from sync.pipeline.models import Delivery, ExceptionItem
from sync.pipeline.replay import exception_items_replay
from tests.reconciliation.conftest import NS_REST, firm_sync

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
BILLS = f"{NS_REST}/record/v1/timeBill"
REFS = ("employee", "customer", "caseTaskEvent", "subsidiary", "department")


def _unexplained(run) -> dict[tuple[str, str, str], ReconciliationBreak]:
    return {
        (b.pair, b.kind, b.source_external_id): b
        for b in ReconciliationBreak.objects.filter(run=run, explained=False)
    }


def _recon_items():
    return ExceptionItem.objects.filter(record_key__startswith="recon:", status__in=("open",))


def test_changes_behind_ledgerbridges_back_are_each_reported_with_kind_ids_and_money(
    django_user_model,
):
    firm = firm_sync(time_entries=1_500)
    entry_type = ContentType.objects.get_for_model(TimeEntry)
    posted = [
        (TimeEntry.objects.get(pk=d.object_id), d.target_id)
        for d in Delivery.objects.filter(state="delivered", content_type=entry_type).order_by("pk")
    ]
    (lost, lost_bill), (edited, edited_bill), (doubled, doubled_bill), (model, _) = posted[:4]
    with_employee = ExternalRef.objects.filter(
        system="erp", content_type=ContentType.objects.get_for_model(Worker)
    ).values_list("object_id", flat=True)
    worker = (
        Worker.objects.filter(employment_status="active", pk__in=[int(i) for i in with_employee])
        .order_by("pk")
        .first()
    )
    erp_employee = ExternalRef.objects.for_record(worker).get(system="erp").external_id

    with firm.erp() as erp:
        # Someone deletes a posted bill, edits another's hours, keys in a second bill for a
        # third entry (a copy without our external id)...
        assert erp.delete(f"{BILLS}/{lost_bill}").status_code == 204
        assert erp.patch(f"{BILLS}/{edited_bill}", json={"hours": 1.25}).status_code == 204
        original = erp.get(f"{BILLS}/{doubled_bill}").json()
        copy = {k: original[k] for k in ("tranDate", "hours", "rate", "isBillable")}
        copy |= {k: {"id": original[k]["id"]} for k in REFS if original.get(k)}
        created = erp.post(BILLS, json=copy)
        assert created.status_code == 204, created.text
        second_bill = created.headers["Location"].rsplit("/", 1)[-1]
    # ... HR terminates a worker whose ERP employee stays active ...
    hr_user = storage.record_get_by_external_id(
        system="scim", object_type="User", external_id=worker.employee_number
    )
    storage.record_update(record=hr_user, changes={"active": False}, status="inactive")
    # ... and a new approval reaches Ledgerbridge but is not delivered yet (explained).
    source = storage.record_get(
        system="kantata", object_type="time_entries", record_id=int(model.psa_id)
    )
    new_entry = storage.record_create(
        system="kantata",
        object_type="time_entries",
        parent_id=source.parent_id,
        status="approved",
        data=dict(source.data),
    )
    assert firm.cycle(deliver=False).status == "succeeded"
    assert Worker.objects.get(pk=worker.pk).employment_status == "terminated"

    run = firm.reconcile()

    assert run.status == "succeeded", run.error
    rate = edited.bill_rate
    breaks = _unexplained(run)
    assert set(breaks) == {
        ("time", "missing_in_target", lost.psa_id),
        ("time", "amount_mismatch", edited.psa_id),
        ("time", "duplicate", doubled.psa_id),
        ("workers_erp", "status_mismatch", worker.employee_number),
    }
    missing = breaks["time", "missing_in_target", lost.psa_id]
    assert missing.target_external_ids == []
    assert (missing.amount, missing.currency) == (lost.hours * lost.bill_rate, lost.currency_id)
    mismatch = breaks["time", "amount_mismatch", edited.psa_id]
    assert mismatch.target_external_ids == [edited_bill]
    assert mismatch.difference == (Decimal("1.25") - edited.hours) * rate
    duplicate = breaks["time", "duplicate", doubled.psa_id]
    assert sorted(duplicate.target_external_ids) == sorted([doubled_bill, second_bill])
    assert duplicate.difference == doubled.hours * doubled.bill_rate  # the extra bill
    status = breaks["workers_erp", "status_mismatch", worker.employee_number]
    assert status.target_external_ids == [erp_employee]
    assert status.detail["source"]["status"] == "inactive"
    assert status.detail["target"][0]["status"] == "active"
    # The approval on its way is reported as explained, and raises nothing.
    (waiting,) = ReconciliationBreak.objects.filter(run=run, source_external_id=str(new_entry.pk))
    assert (waiting.kind, waiting.explained) == ("missing_in_target", True)
    assert waiting.explanation.startswith("delivery ")
    assert waiting.exception_item is None

    # Each new break opened one item in its queue, with the money at risk and its fix.
    items = {i.record_key: i for i in _recon_items()}
    assert set(items) == {b.record_key for b in breaks.values()}
    assert {i.queue for i in items.values()} == {"time_and_expense"}
    lost_item = items[missing.record_key]
    assert (lost_item.money_at_risk, lost_item.currency) == (missing.amount, missing.currency)
    # Replay is its fix: the item carries the entry's delivery, set back to failed for a retry.
    assert lost_item.delivery is not None
    assert lost_item.delivery.state == "failed"
    assert items[mismatch.record_key].money_at_risk == abs(mismatch.difference)

    # A second run finds the same breaks and opens no second item.
    second = firm.reconcile()
    assert set(_unexplained(second)) == set(breaks)
    assert {i.record_key: i.occurrences for i in _recon_items()} == dict.fromkeys(items, 2)

    # Replaying the edited bill's item re-sends its delivery (an upsert under the entry's
    # external id, restoring the approved hours); the next run no longer finds the break and
    # resolves its item, and leaves the others open.
    edited_item = items[mismatch.record_key]
    assert edited_item.delivery is not None
    user = django_user_model.objects.create_user("finance")
    exception_items_replay(items=[edited_item], user=user)
    assert firm.cycle().status == "succeeded"
    third = firm.reconcile()
    assert set(_unexplained(third)) == set(breaks) - {("time", "amount_mismatch", edited.psa_id)}
    edited_item.refresh_from_db()
    assert edited_item.status == "resolved"
    assert {i.record_key for i in _recon_items()} == set(items) - {mismatch.record_key}


def test_after_a_cycle_only_what_it_touched_is_reconciled(monkeypatch):
    from django.utils import timezone

    from reconciliation.runs import reconciliation_after_cycle
    from sync.pipeline.models import SyncRun
    from tests import factories as f

    quiet = SyncRun.objects.create(kind="cycle", started_at=timezone.now())
    assert reconciliation_after_cycle(sync_run=quiet) is None

    cycle = SyncRun.objects.create(kind="cycle", started_at=timezone.now(), pulled=0)
    f.TimeEntryFactory(work_date=dt.date(2026, 10, 14))
    run = reconciliation_after_cycle(sync_run=cycle)
    # One month's time changed (and its worker): that month, every pair, after that cycle.
    assert (run.trigger, run.period, run.sync_run) == ("cycle", "2026-10", cycle)
    assert run.pairs == ["time", "workers_erp", "workers_psa"]
    # No ERP or PSA connection here: the run says so instead of reporting every record.
    assert run.status == "failed"
    assert "no enabled erp connection" in run.error
    assert not run.breaks.exists()


def test_a_pair_or_period_the_command_does_not_know_is_refused_before_anything_runs():
    from django.core.management import CommandError, call_command

    from reconciliation.models import ReconciliationRun

    with pytest.raises(CommandError, match="YYYY-MM"):
        call_command("reconcile", "--period", "2026-13")
    with pytest.raises(CommandError):
        call_command("reconcile", "--pair", "no_such_pair")
    assert not ReconciliationRun.objects.exists()
