"""Pair "invoices": billing's invoices (its own list) against the ERP's (SuiteQL). The firm's
billing history is the precondition: the seed issues every invoice in billing and posts it to
the ERP under the same number (sandbox/generator/billing.py), as Ledgerbridge's billing flow
does; the test then changes both systems behind Ledgerbridge's back through their APIs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from reconciliation.models import ReconciliationBreak
from sandbox.stripe.api import SECRET_KEY
from sync.pipeline.models import Connection, ExceptionItem
from tests.reconciliation.conftest import NS_REST, firm_sync

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
INVOICES = f"{NS_REST}/record/v1/invoice"
HUNDRED = Decimal("100.00")


def _billing_invoices(client: httpx.Client) -> list[dict[str, Any]]:
    """Every billing invoice, through billing's own list (cursor pages)."""
    found: list[dict[str, Any]] = []
    after: dict[str, str] = {}
    while True:
        body = client.get("/v1/invoices", params={"limit": 100, **after}).json()
        found += body["data"]
        if not body["has_more"]:
            return found
        after = {"starting_after": body["data"][-1]["id"]}


def _erp_invoice_ids(erp: httpx.Client) -> dict[str, str]:
    """{externalId (the billing number): ERP internal id}, through SuiteQL."""
    answer = erp.post(
        f"{NS_REST}/query/v1/suiteql",
        params={"limit": 1000},
        json={"q": "SELECT id, externalid FROM invoice ORDER BY id"},
        headers={"Prefer": "transient"},
    ).json()
    return {row["externalid"]: str(row["id"]) for row in answer["items"] if row.get("externalid")}


def _lines(invoice: dict[str, Any]) -> list[dict[str, Any]]:
    writable = ("item", "description", "quantity", "rate", "amount")
    return [{k: line[k] for k in writable if k in line} for line in invoice["item"]["items"]]


def test_invoice_changes_behind_ledgerbridges_back_are_each_reported_with_kind_ids_and_money():
    firm = firm_sync(time_entries=300)
    billing = Connection.objects.get(system="billing")
    with httpx.Client(
        transport=firm.transport_for(),
        base_url=billing.base_url,
        headers={"Authorization": f"Bearer {SECRET_KEY}"},
    ) as stripe:
        invoices = _billing_invoices(stripe)
        # The newest open invoices: their ERP period is still open for edits.
        open_ = sorted((i for i in invoices if i["status"] == "open"), key=lambda i: -i["created"])
        edited, doubled, voided = open_[:3]
        # Billing voids an open invoice that the ERP still holds open...
        answer = stripe.post(f"/v1/invoices/{voided['id']}/void", headers={"Idempotency-Key": "v"})
        assert answer.json()["status"] == "void", answer.text

    with firm.erp() as erp:
        ids = _erp_invoice_ids(erp)
        # ... someone edits an ERP invoice's line amount (+100.00) ...
        original = erp.get(
            f"{INVOICES}/{ids[edited['number']]}", params={"expandSubResources": "true"}
        ).json()
        lines = _lines(original)
        lines[0]["amount"] = str(Decimal(str(lines[0]["amount"])) + HUNDRED)
        lines[0].pop("rate", None)
        patched = erp.patch(f"{INVOICES}/{ids[edited['number']]}", json={"item": {"items": lines}})
        assert patched.status_code == 204, patched.text
        # ... and keys in a second ERP invoice for another (no external id: just the number).
        source = erp.get(
            f"{INVOICES}/{ids[doubled['number']]}", params={"expandSubResources": "true"}
        ).json()
        copy = {k: source[k] for k in ("tranDate", "otherRefNum", "memo")}
        copy |= {k: {"id": source[k]["id"]} for k in ("entity", "job", "subsidiary", "currency")}
        copy["item"] = {"items": _lines(source)}
        created = erp.post(INVOICES, json=copy)
        assert created.status_code == 204, created.text
        second = created.headers["Location"].rsplit("/", 1)[-1]

    run = firm.reconcile(pairs=["invoices"])

    assert run.status == "succeeded", run.error
    breaks = {
        (b.kind, b.source_external_id): b
        for b in ReconciliationBreak.objects.filter(run=run, explained=False)
    }
    assert set(breaks) == {
        ("amount_mismatch", edited["id"]),
        ("duplicate", doubled["id"]),
        ("status_mismatch", voided["id"]),
    }
    mismatch = breaks["amount_mismatch", edited["id"]]
    assert mismatch.target_external_ids == [ids[edited["number"]]]
    assert mismatch.currency == edited["currency"].upper()
    assert mismatch.amount == Decimal(edited["total"]) / 100
    assert mismatch.difference == HUNDRED
    duplicate = breaks["duplicate", doubled["id"]]
    assert sorted(duplicate.target_external_ids) == sorted([ids[doubled["number"]], second])
    assert duplicate.difference == Decimal(doubled["total"]) / 100  # billed twice
    status = breaks["status_mismatch", voided["id"]]
    assert status.target_external_ids == [ids[voided["number"]]]
    assert status.amount == Decimal(voided["total"]) / 100
    assert (status.detail["source"]["status"], status.detail["target"][0]["status"]) == (
        "void",
        "live",
    )
    # Each opened one item in the billing queue, with the money at risk.
    items = {
        i.record_key: i
        for i in ExceptionItem.objects.filter(record_key__startswith="recon:invoices:")
    }
    assert set(items) == {b.record_key for b in breaks.values()}
    assert {i.queue for i in items.values()} == {"billing"}
    assert items[duplicate.record_key].money_at_risk == duplicate.difference
    assert items[status.record_key].money_at_risk == status.amount


def test_a_billing_invoice_the_erp_lacks_is_missing_there_and_a_period_scopes_both_sides():
    firm = firm_sync(time_entries=300)
    with firm.erp() as erp:
        ids = _erp_invoice_ids(erp)
        number = max(ids)
        month_of = erp.get(f"{INVOICES}/{ids[number]}").json()["tranDate"][:7]
        assert erp.delete(f"{INVOICES}/{ids[number]}").status_code == 204

    run = firm.reconcile(pairs=["invoices"], period=month_of)

    assert run.status == "succeeded", run.error
    (lost,) = ReconciliationBreak.objects.filter(run=run)
    assert (lost.kind, lost.target_external_ids, lost.period) == (
        "missing_in_target",
        [],
        month_of,
    )
    assert lost.detail["key"] == number
    # Only the month's invoices were compared, on both sides.
    source = sum(t["count"] for t in run.totals["invoices"]["source"].values())
    target = sum(t["count"] for t in run.totals["invoices"]["target"].values())
    assert source == target + 1
    assert source < len(ids)
