"""Pair "expenses": PSA approved expenses (canonical) against the ERP's expense reports
(SuiteQL), after changes made in the ERP behind Ledgerbridge's back through its API."""

from __future__ import annotations

import pytest

from reconciliation.models import ReconciliationBreak
from sync.models import Expense
from sync.pipeline.models import ExceptionItem
from tests.reconciliation.conftest import NS_REST, firm_sync

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
REPORTS = f"{NS_REST}/record/v1/expenseReport"


def test_expense_report_changes_behind_ledgerbridges_back_are_reported_with_kind_ids_and_money():
    firm = firm_sync(time_entries=300)
    with firm.erp() as erp:
        answer = erp.post(
            f"{NS_REST}/query/v1/suiteql",
            json={"q": "SELECT id, externalid FROM expenseReport ORDER BY id"},
            headers={"Prefer": "transient"},
        ).json()
        reports = {r["externalid"]: str(r["id"]) for r in answer["items"] if r.get("externalid")}
        expenses = list(
            Expense.objects.filter(status="posted", psa_id__isnull=False).order_by(
                "-incurred_date", "pk"
            )
        )
        lost, rejected, doubled = expenses[:3]
        report = {e.pk: reports[f"KT-EX-{e.psa_id}"] for e in (lost, rejected, doubled)}
        # Someone deletes one report, rejects another in the ERP, and keys in a copy of a
        # third without its external id.
        assert erp.delete(f"{REPORTS}/{report[lost.pk]}").status_code == 204
        rejecting = erp.patch(
            f"{REPORTS}/{report[rejected.pk]}", json={"approvalStatus": {"id": "3"}}
        )
        assert rejecting.status_code == 204, rejecting.text
        original = erp.get(
            f"{REPORTS}/{report[doubled.pk]}", params={"expandSubResources": "true"}
        ).json()
        # (A controller reopens the report's month to key the copy in.)
        periods = erp.post(
            f"{NS_REST}/query/v1/suiteql",
            json={
                "q": "SELECT id, TO_CHAR(startdate, 'YYYY-MM-DD') AS startdate, "
                "TO_CHAR(enddate, 'YYYY-MM-DD') AS enddate FROM accountingPeriod "
                "WHERE closed = 'T'"
            },
            headers={"Prefer": "transient"},
        ).json()["items"]
        for period in periods:
            if period["startdate"] <= original["tranDate"] <= period["enddate"]:
                reopened = erp.patch(
                    f"{NS_REST}/record/v1/accountingPeriod/{period['id']}", json={"closed": False}
                )
                assert reopened.status_code == 204, reopened.text
        copy = {"tranDate": original["tranDate"], "memo": "keyed in by hand"}
        copy |= {k: {"id": original[k]["id"]} for k in ("entity", "subsidiary", "currency")}
        lines = [
            {k: line[k] for k in ("expenseDate", "category", "amount") if k in line}
            for line in original["expense"]["items"]
        ]
        copy["expense"] = {"items": lines}
        created = erp.post(REPORTS, json=copy)
        assert created.status_code == 204, created.text
        second = created.headers["Location"].rsplit("/", 1)[-1]

    run = firm.reconcile(pairs=["expenses"])

    assert run.status == "succeeded", run.error
    breaks = {
        (b.kind, b.source_external_id): b
        for b in ReconciliationBreak.objects.filter(run=run, explained=False)
    }
    assert set(breaks) == {
        ("missing_in_target", lost.psa_id),
        ("status_mismatch", rejected.psa_id),
        ("duplicate", doubled.psa_id),
    }
    missing = breaks["missing_in_target", lost.psa_id]
    assert missing.target_external_ids == []
    assert (missing.amount, missing.currency) == (lost.amount, lost.currency_id)
    status = breaks["status_mismatch", rejected.psa_id]
    assert status.target_external_ids == [report[rejected.pk]]
    assert status.amount == rejected.amount
    assert status.detail["target"][0]["status"] == "void"
    duplicate = breaks["duplicate", doubled.psa_id]
    assert sorted(duplicate.target_external_ids) == sorted([report[doubled.pk], second])
    assert duplicate.difference == doubled.amount  # the extra report
    # One item each in the time-and-expense queue; the lost report's item can replay the
    # expense's delivery (an upsert under KT-EX-<id>).
    items = {
        i.record_key: i
        for i in ExceptionItem.objects.filter(record_key__startswith="recon:expenses:")
    }
    assert set(items) == {b.record_key for b in breaks.values()}
    assert {i.queue for i in items.values()} == {"time_and_expense"}
    assert items[missing.record_key].money_at_risk == lost.amount
