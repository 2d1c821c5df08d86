"""Payments on real PostgreSQL against the served sandbox: one invoice paid in the ERP, another
collected by billing; after two more cycles each payment is recorded once in each system
(counted through NetSuite's and Stripe's own APIs) and both canonical invoices are paid."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from sync.integrations.registry import target_connector_for
from sync.models import ExternalRef, Invoice, Payment
from sync.pipeline.cycle import sync_cycle_run
from sync.pipeline.models import Connection, Delivery
from tests.integration import test_billing as billing_side

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]

firm = billing_side.firm  # a seeded firm connected to the served sandbox, one cycle run
PAYING_CARD = "pm_card_visa"  # the sandbox's Stripe test card that always succeeds


def erp_payments(erp: Connection) -> list[dict]:
    """The ERP's customer payments, through SuiteQL."""
    connector = target_connector_for(erp)
    try:
        query = "SELECT id, externalid, payment FROM customerPayment ORDER BY id"
        return [row for page in connector.suiteql(query) for row in page.records]
    finally:
        connector.close()


def billing_ref(invoice: Invoice) -> str:
    return ExternalRef.objects.get(
        system="billing", content_type__model="invoice", object_id=str(invoice.pk)
    ).external_id


def test_a_payment_made_in_either_system_is_recorded_once_in_both(firm):
    erp, billing = firm["erp"], firm["billing"]
    billing_side.billed_project(billing, set(billing_side.unbilled_months(firm["manifest"])))
    for _ in range(2):
        assert sync_cycle_run().status == "succeeded"  # issued in billing, then in the ERP
    invoices = list(Invoice.objects.filter(status=Invoice.Status.OPEN).order_by("id"))
    assert len(invoices) >= 2, "the seed plants more than one unbilled month"
    in_erp, in_billing = invoices[0], invoices[1]
    before = len(erp_payments(erp))

    netsuite = target_connector_for(erp)
    stripe = target_connector_for(billing)
    try:
        record = netsuite.get_by_external_id(record_type="invoice", external_id=in_erp.number)
        amount = str(record["amountRemaining"])
        erp_payment_id = netsuite.create(
            record_type="customerPayment",
            body={
                "customer": {"id": record["entity"]["id"]},
                "tranDate": timezone.localdate().isoformat(),  # an open period
                "payment": amount,
                "memo": "Cash received by the ERP",
                "apply": {
                    "items": [{"doc": {"id": record["id"]}, "apply": True, "amount": amount}]
                },
            },
        )
        stripe.post(
            f"/v1/invoices/{billing_ref(in_billing)}/pay",
            values={"payment_method": PAYING_CARD},
            idempotency_key="test-collect",
        )
    finally:
        netsuite.close()
    for _ in range(2):
        run = sync_cycle_run()
        assert run.status == "succeeded", run.error

    try:
        marked = stripe.get(record_type="invoices", record_id=billing_ref(in_erp))
        collected = stripe.get(record_type="invoices", record_id=billing_ref(in_billing))
    finally:
        stripe.close()
    assert (marked["status"], marked["paid_out_of_band"]) == ("paid", True)
    assert (collected["status"], collected["paid_out_of_band"]) == ("paid", False)
    payments = erp_payments(erp)
    assert len(payments) == before + 2  # the firm's payment, and one for billing's collection
    ours = [p for p in payments if (p.get("externalid") or "").startswith("ST-PAY-")]
    assert [p["externalid"] for p in ours] == [f"ST-PAY-{billing_ref(in_billing)}"]
    assert Decimal(str(ours[0]["payment"])) == in_billing.total
    for invoice in (in_erp, in_billing):
        invoice.refresh_from_db()
        assert invoice.status == Invoice.Status.PAID
        [payment] = Payment.objects.filter(invoice=invoice)
        assert (payment.amount, payment.status) == (invoice.total, Payment.Status.APPLIED)
    assert (
        ExternalRef.objects.filter(
            system="erp",
            content_type__model="payment",
            external_id__startswith=f"{erp_payment_id}/",
        ).count()
        == 1
    )
    assert Delivery.objects.filter(operation="billing.payment.record").count() == 1
    assert Delivery.objects.filter(operation="erp.payment.upsert").count() == 1
    assert (
        not Delivery.objects.exclude(state=Delivery.State.DELIVERED)
        .filter(operation__in=["billing.payment.record", "erp.payment.upsert"])
        .exists()
    )
