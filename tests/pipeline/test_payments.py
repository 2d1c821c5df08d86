"""Cash applied where it arrives reaches the other system once: an ERP customer payment marks
the billing invoice paid out of band, a payment billing collected becomes one ERP customer
payment, each counted through the in-process sandbox's own APIs over several cycles."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from sandbox.stripe import services as stripe_services
from sync.integrations.netsuite.payments import ErpPayment
from sync.models import ExternalRef, Invoice, Payment
from sync.pipeline.delivery import deliveries_send_due
from sync.pipeline.models import Delivery, SyncRun
from sync.pipeline.payments import rules
from sync.pipeline.payments.flow import payments_follow_up
from tests.pipeline import test_billing_erp as erp_side

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

# The invoice in billing and the ERP as test_billing_erp builds it (fixtures found by name).
sandbox, transport, stripe, billing = (
    erp_side.sandbox,
    erp_side.transport,
    erp_side.stripe,
    (erp_side.billing),
)
erp, netsuite, project = erp_side.erp, erp_side.netsuite, erp_side.project
PAYING_CARD = "pm_card_visa"  # the sandbox's test card that always succeeds
TOTAL = Decimal("1004.00")  # 8 h at 125.50


@pytest.fixture
def invoice(billing, erp, transport, project) -> Invoice:
    """One open invoice Ledgerbridge issued, held by billing and the ERP."""
    erp_side.cycle(transport)
    invoice = Invoice.objects.get()
    assert invoice.status == Invoice.Status.OPEN
    return invoice


def payments_cycle(transport) -> None:
    run = SyncRun.objects.create(
        kind=SyncRun.Kind.CYCLE, status=SyncRun.Status.RUNNING, started_at=timezone.now()
    )
    payments_follow_up(run=run, transport_for=lambda connection: transport)
    deliveries_send_due(connector_options={"transport": transport})


def billing_invoice(stripe, invoice: Invoice) -> dict:
    ref = ExternalRef.objects.get(system="billing", content_type__model="invoice")
    return stripe.get(record_type="invoices", record_id=ref.external_id)


def erp_invoice(netsuite, invoice: Invoice) -> dict:
    return netsuite.get_by_external_id(record_type="invoice", external_id=invoice.number)


def erp_payments(netsuite) -> list[dict]:
    pages = netsuite.suiteql("SELECT id, externalid, payment FROM customerPayment")
    return [row for page in pages for row in page.records]


def erp_pay(netsuite, invoice: Invoice, amount: str) -> str:
    """A customer payment entered in the ERP by the firm's cash team."""
    record = erp_invoice(netsuite, invoice)
    return netsuite.create(
        record_type="customerPayment",
        body={
            "customer": {"id": record["entity"]["id"]},
            "tranDate": "2026-02-10",
            "payment": amount,
            "apply": {"items": [{"doc": {"id": record["id"]}, "apply": True, "amount": amount}]},
        },
    )


def test_an_erp_payment_marks_the_billing_invoice_paid_out_of_band_once(
    stripe, netsuite, transport, invoice
):
    payment_id = erp_pay(netsuite, invoice, "1004.00")

    for _ in range(2):
        payments_cycle(transport)

    billed = billing_invoice(stripe, invoice)
    assert (billed["status"], billed["paid_out_of_band"]) == ("paid", True)
    [payment] = Payment.objects.all()
    assert (payment.amount, payment.status, payment.received_date) == (
        TOTAL,
        Payment.Status.APPLIED,
        dt.date(2026, 2, 10),
    )
    assert ExternalRef.objects.get(system="erp", content_type__model="payment").external_id == (
        f"{payment_id}/{erp_invoice(netsuite, invoice)['id']}"
    )
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert len(erp_payments(netsuite)) == 1  # the billing mark did not come back to the ERP
    assert Delivery.objects.filter(operation="billing.payment.record").count() == 1


def test_a_payment_collected_by_billing_becomes_one_erp_customer_payment(
    stripe, netsuite, transport, invoice
):
    billed = billing_invoice(stripe, invoice)
    stripe_services.invoice_pay(
        invoice_id=billed["id"],
        paid_out_of_band=False,
        payment_method=PAYING_CARD,
        ref=stripe_services.RequestRef(),
    )

    for _ in range(2):
        payments_cycle(transport)

    [posted] = erp_payments(netsuite)
    assert posted["externalid"] == f"ST-PAY-{billed['id']}"
    assert Decimal(str(posted["payment"])) == TOTAL
    assert Decimal(str(erp_invoice(netsuite, invoice)["amountRemaining"])) == 0
    [payment] = Payment.objects.all()
    assert (payment.amount, payment.status) == (TOTAL, Payment.Status.APPLIED)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    again = billing_invoice(stripe, invoice)
    assert (again["status"], again["paid_out_of_band"]) == ("paid", False)
    assert not Delivery.objects.filter(operation="billing.payment.record").exists()


def test_a_partial_erp_payment_is_recorded_and_billing_is_told_only_when_nothing_remains(
    stripe, netsuite, transport, invoice
):
    erp_pay(netsuite, invoice, "400.00")
    payments_cycle(transport)

    [partial] = Payment.objects.all()
    assert (partial.amount, partial.status) == (Decimal("400.00"), Payment.Status.APPLIED)
    assert billing_invoice(stripe, invoice)["status"] == "open"
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN

    erp_pay(netsuite, invoice, "604.00")
    payments_cycle(transport)
    payments_cycle(transport)

    assert sorted(p.amount for p in Payment.objects.all()) == [Decimal("400.00"), Decimal("604.00")]
    assert set(Payment.objects.values_list("status", flat=True)) == {Payment.Status.APPLIED}
    assert billing_invoice(stripe, invoice)["status"] == "paid"
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert len(erp_payments(netsuite)) == 2


def test_a_resent_erp_payment_delivery_writes_no_second_payment(
    stripe, netsuite, transport, invoice
):
    billed = billing_invoice(stripe, invoice)
    stripe_services.invoice_pay(
        invoice_id=billed["id"],
        paid_out_of_band=False,
        payment_method=PAYING_CARD,
        ref=stripe_services.RequestRef(),
    )
    payments_cycle(transport)
    Delivery.objects.update(state=Delivery.State.PENDING, next_attempt_at=timezone.now())
    deliveries_send_due(connector_options={"transport": transport})

    assert len(erp_payments(netsuite)) == 1
    assert Delivery.objects.get(operation="erp.payment.upsert").state == Delivery.State.DELIVERED
    assert Payment.objects.count() == 1


def _erp_payment(payment_id: str, external_id: str | None, **applied: str) -> ErpPayment:
    return ErpPayment(
        payment_id=payment_id,
        external_id=external_id,
        tran_date=dt.date(2026, 2, 10),
        applied={k.lstrip("i"): Decimal(v) for k, v in applied.items()},
    )


@pytest.mark.parametrize(
    ("payment", "recorded", "expected"),
    [
        (_erp_payment("7", None, i41="100.00"), set(), [Decimal("100.00")]),
        (_erp_payment("7", "ST-PAY-in_1", i41="100.00"), set(), []),  # ours: never new cash
        (_erp_payment("7", None, i41="100.00"), {"7/41"}, []),  # recorded already
        (_erp_payment("7", None, i42="100.00"), set(), []),  # another invoice
        (_erp_payment("7", "PYMT-SIM", i41="30.00", i42="70.00"), set(), [Decimal("30.00")]),
    ],
)
def test_only_unrecorded_erp_cash_on_the_invoice_is_new(payment, recorded, expected):
    found = rules.erp_payments_new(payments=[payment], erp_invoice_id="41", recorded_refs=recorded)

    assert [amount for _, amount in found] == expected


@pytest.mark.parametrize(
    ("remaining", "due"), [(Decimal("0.00"), True), (Decimal("0.01"), False), (Decimal(-1), True)]
)
def test_billing_is_told_only_when_the_erp_says_nothing_remains(remaining, due):
    assert rules.billing_mark_due(remaining=remaining) is due


def test_an_invoice_the_firm_also_marked_paid_in_billing_is_settled_by_the_erp_cash_alone(
    stripe, netsuite, transport, invoice
):
    billed = billing_invoice(stripe, invoice)
    stripe_services.invoice_pay(
        invoice_id=billed["id"],
        paid_out_of_band=True,
        payment_method=None,
        ref=stripe_services.RequestRef(),
    )
    erp_pay(netsuite, invoice, "1004.00")

    payments_cycle(transport)

    [payment] = Payment.objects.all()
    assert payment.status == Payment.Status.APPLIED
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert not Delivery.objects.filter(operation__endswith="payment.record").exists()
    assert len(erp_payments(netsuite)) == 1
