"""Pair "payments": the cash the ERP applied to each invoice against billing's paid amounts.
The seed pays every invoice due before its as-of date in both systems (a NetSuite customer
payment applied to the ERP invoice, the billing invoice paid); the test changes the ERP's
cash application behind Ledgerbridge's back through its API."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from reconciliation.models import ReconciliationBreak
from sync.pipeline.models import ExceptionItem
from tests.reconciliation.conftest import NS_REST, firm_sync

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
PAYMENTS = f"{NS_REST}/record/v1/customerPayment"
FIFTY = Decimal("50.00")


def _suiteql(erp, query: str) -> list[dict]:
    return erp.post(
        f"{NS_REST}/query/v1/suiteql",
        params={"limit": 1000},
        json={"q": query},
        headers={"Prefer": "transient"},
    ).json()["items"]


def test_a_deleted_erp_payment_and_one_billing_never_saw_are_reported_with_ids_and_money():
    firm = firm_sync(time_entries=300)
    with firm.erp() as erp:
        invoices = {
            row["externalid"]: row
            for row in _suiteql(
                erp,
                "SELECT id, externalid, entity, currency, subsidiary, total, status FROM invoice",
            )
        }
        paid = sorted(n for n, row in invoices.items() if row["status"] == "B")
        unpaid = sorted(n for n, row in invoices.items() if row["status"] == "A")
        lost, partly = invoices[paid[0]], invoices[unpaid[-1]]
        # Someone deletes the customer payment of a paid invoice (the ERP reopens it) ...
        (payment,) = [
            p
            for p in _suiteql(erp, "SELECT id, memo FROM customerPayment")
            if p.get("memo") == f"Payment of {lost['externalid']}"
        ]
        assert erp.delete(f"{PAYMENTS}/{payment['id']}").status_code == 204
        # ... and applies a part payment to an open one that billing knows nothing of.
        created = erp.post(
            PAYMENTS,
            json={
                "customer": {"id": partly["entity"]},
                "subsidiary": {"id": partly["subsidiary"]},
                "currency": {"id": partly["currency"]},
                "tranDate": timezone.localdate().isoformat(),
                "payment": str(FIFTY),
                "apply": {"items": [{"doc": {"id": partly["id"]}, "amount": str(FIFTY)}]},
            },
        )
        assert created.status_code == 204, created.text

    run = firm.reconcile(pairs=["payments"])

    assert run.status == "succeeded", run.error
    breaks = {b.source_external_id: b for b in ReconciliationBreak.objects.filter(run=run)}
    assert set(breaks) == {lost["id"], partly["id"]}
    assert {(b.kind, b.explained) for b in breaks.values()} == {("amount_mismatch", False)}
    reopened = breaks[lost["id"]]
    assert reopened.detail["key"] == lost["externalid"]
    assert len(reopened.target_external_ids) == 1
    assert reopened.target_external_ids[0].startswith("in_")
    # The ERP now holds no cash on it; billing says the whole total was paid.
    assert reopened.amount == Decimal("0.00")
    assert reopened.difference == Decimal(str(lost["total"]))
    part = breaks[partly["id"]]
    assert part.detail["key"] == partly["externalid"]
    assert (part.amount, part.difference) == (FIFTY, -FIFTY)
    items = ExceptionItem.objects.filter(record_key__startswith="recon:payments:")
    assert {(i.queue, i.money_at_risk) for i in items} == {
        ("billing", Decimal(str(lost["total"]))),
        ("billing", FIFTY),
    }
