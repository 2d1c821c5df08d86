"""Pending candidates become one finalized invoice each in billing (the in-process sandbox's
Stripe), counted through Stripe's own API: a second run, a resend, a replay after the answer was
lost make no second invoice; a customer not in billing yet waits as an exception item."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.stripe import api as stripe_api
from sync.connectors.base import ConnectionConfig
from sync.integrations.stripe.client import StripeConnector
from sync.models import (
    Customer,
    ExternalRef,
    Invoice,
    InvoiceCandidate,
    InvoiceLine,
    Milestone,
    TimeEntry,
)
from sync.models.transactions import ApprovalStatus
from sync.pipeline.billing.candidates import invoice_candidates_build
from sync.pipeline.billing.issue import CUSTOMER_MISSING, invoice_candidates_offer
from sync.pipeline.delivery import deliveries_send_due
from sync.pipeline.models import Connection, Delivery, ExceptionItem
from tests import factories as f

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

JAN = dt.date(2026, 1, 5)
BASE_URL = "http://sandbox.test/stripe"


@pytest.fixture
def sandbox() -> SandboxApp:
    return SandboxApp(faults=FaultBook(seed=5), manage_connections=False, sleep=lambda s: None)


@pytest.fixture
def transport(sandbox) -> httpx.WSGITransport:
    return httpx.WSGITransport(app=sandbox)


@pytest.fixture
def stripe(transport) -> StripeConnector:
    config = ConnectionConfig(
        system="billing", base_url=BASE_URL, credentials={"secret_key": stripe_api.SECRET_KEY}
    )
    return StripeConnector(config, transport=transport)


@pytest.fixture
def billing() -> Connection:
    conn = Connection(
        name="stripe", system="billing", dialect="stripe", base_url=BASE_URL, max_concurrency=1
    )
    conn.credentials_set({"secret_key": stripe_api.SECRET_KEY})
    conn.save()
    return conn


def customer_link(customer: Customer, stripe: StripeConnector, *, erp_id: str = "9001") -> str:
    """The customer as onboarding leaves it: in billing (a Stripe customer) and in the ERP."""
    stripe_id = stripe.upsert_by_external_id(
        record_type="customers",
        external_id=f"CUST-{customer.pk}",
        body={"name": customer.name},
    )
    for system, external_id in ((ExternalRef.System.BILLING, stripe_id), ("erp", erp_id)):
        f.ExternalRefFactory(system=system, record=customer, external_id=external_id)
    return stripe_id


@pytest.fixture
def month(stripe):
    """A project whose customer is in billing and the ERP, with two posted January entries."""
    project = f.ProjectFactory()
    customer_link(project.customer, stripe)
    worker = f.WorkerFactory(name="Ada Lovelace")
    for day, hours in ((0, "7.50"), (1, "0.25")):
        f.TimeEntryFactory(
            project=project,
            worker=worker,
            work_date=JAN + dt.timedelta(days=day),
            hours=Decimal(hours),
            bill_rate=Decimal("150.0000"),
            status=ApprovalStatus.POSTED,
        )
    return project


def cycle(billing, transport) -> None:
    """The billing part of a cycle: build, offer, send."""
    invoice_candidates_build(today=dt.date(2026, 2, 3), actor="run:1")
    invoice_candidates_offer(billing=billing, now=timezone.now())
    deliveries_send_due(connector_options={"transport": transport})


def stripe_invoices(stripe: StripeConnector) -> list[dict]:
    return stripe.http.request("GET", "/v1/invoices", params={"limit": 100}).json()["data"]


def test_a_candidate_becomes_one_finalized_invoice_in_billing_and_is_recorded(
    billing, transport, stripe, month
):
    cycle(billing, transport)

    [invoice] = stripe_invoices(stripe)
    assert (invoice["status"], invoice["currency"]) == ("open", "eur")
    assert invoice["amount_due"] == 116250  # 7.75 h x 150 = 1162.50
    assert invoice["number"]
    candidate = InvoiceCandidate.objects.get()
    assert candidate.status == InvoiceCandidate.Status.INVOICED
    ours = Invoice.objects.get()  # a draft until its number is read back (test_billing_erp)
    assert (ours.status, ours.total, ours.customer_id) == (
        "draft",
        Decimal("1162.50"),
        month.customer_id,
    )
    assert ExternalRef.objects.for_record(ours).get().external_id == invoice["id"]
    line = InvoiceLine.objects.get()
    assert (line.candidate, line.quantity, line.amount) == (
        candidate,
        Decimal("7.75"),
        Decimal("1162.50"),
    )
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {ApprovalStatus.INVOICED}


def test_a_second_cycle_and_a_replay_of_the_delivery_make_no_second_invoice(
    billing, transport, stripe, month
):
    cycle(billing, transport)
    cycle(billing, transport)
    # A replay: the delivered row sent again from the start, as after a lost outcome.
    Delivery.objects.filter(operation="billing.invoice.issue").update(
        state=Delivery.State.PENDING, next_attempt_at=timezone.now()
    )
    deliveries_send_due(connector_options={"transport": transport})

    assert len(stripe_invoices(stripe)) == 1
    assert Invoice.objects.count() == 1
    assert Delivery.objects.filter(operation="billing.invoice.issue").count() == 1


class AnswerLost(httpx.BaseTransport):
    """Runs the request in the sandbox (Stripe commits the write), then loses the answer of the
    first `times` requests to `path`, as a connection dropped mid-answer does."""

    def __init__(self, inner: httpx.BaseTransport, *, path: str, times: int) -> None:
        self.inner, self.path, self.times = inner, path, times

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path.endswith(self.path) and self.times:
            self.times -= 1
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        return response


def test_an_answer_lost_after_the_invoice_was_created_is_resolved_without_a_second_invoice(
    billing, transport, stripe, month
):
    lossy = AnswerLost(transport, path="/v1/invoices", times=1)

    cycle(billing, lossy)  # the draft is created, its answer lost: indeterminate
    assert Delivery.objects.get().state == Delivery.State.PENDING
    Delivery.objects.update(next_attempt_at=timezone.now())
    deliveries_send_due(connector_options={"transport": lossy})

    assert [i["status"] for i in stripe_invoices(stripe)] == ["open"]
    assert InvoiceCandidate.objects.get().status == InvoiceCandidate.Status.INVOICED


def test_a_customer_not_in_billing_yet_waits_as_an_item_and_goes_once_onboarded(
    billing, transport, stripe
):
    milestone = f.MilestoneFactory(amount=Decimal("5000.00"), status=Milestone.Status.COMPLETED)

    cycle(billing, transport)

    item = ExceptionItem.objects.get(code=CUSTOMER_MISSING)
    assert (item.queue, item.money_at_risk) == ("billing", Decimal("5000.00"))
    assert not Delivery.objects.exists()

    customer_link(milestone.project.customer, stripe)
    cycle(billing, transport)

    item.refresh_from_db()
    assert item.status != "open"
    assert [i["amount_due"] for i in stripe_invoices(stripe)] == [500000]
    milestone.refresh_from_db()
    assert milestone.status == Milestone.Status.INVOICED


def test_invoice_deliveries_go_to_the_billing_connection_under_the_candidates_key(
    billing, transport, stripe, month
):
    invoice_candidates_build(today=dt.date(2026, 2, 3), actor="run:1")
    invoice_candidates_offer(billing=billing, now=timezone.now())
    again = invoice_candidates_offer(billing=billing, now=timezone.now())

    delivery = Delivery.objects.get()
    candidate = InvoiceCandidate.objects.get()
    assert delivery.connection == billing
    assert delivery.content_type == ContentType.objects.get_for_model(InvoiceCandidate)
    assert delivery.external_id == f"LB-IC-{candidate.pk}"
    assert again.enqueued == 0
