"""Issued billing invoices reach the ERP once, in the cycle that issues them: the number billing
gave is read back, and the NetSuite invoice keyed by it (counted through SuiteQL) is made once,
however many cycles and replays follow."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from sandbox.netsuite import views as netsuite_views
from sync.connectors.base import ConnectionConfig
from sync.integrations.netsuite.client import NetSuiteConnector
from sync.models import ExternalRef, Invoice
from sync.models.transactions import ApprovalStatus
from sync.pipeline.billing.flow import billing_cycle_run, billing_follow_up
from sync.pipeline.delivery import deliveries_send_due
from sync.pipeline.models import Connection, Delivery, SyncRun
from tests import factories as f
from tests.pipeline import test_billing_issue as issue
from tests.pipeline.test_cycle import ledger_build

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

# The billing side as test_billing_issue sets it up (fixtures are found by name).
sandbox, transport, stripe, billing = issue.sandbox, issue.transport, issue.stripe, issue.billing
customer_link, stripe_invoices = issue.customer_link, issue.stripe_invoices

FEBRUARY = dt.datetime(2026, 2, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def erp() -> Connection:
    conn = Connection(
        name="netsuite",
        system="erp",
        dialect="netsuite",
        base_url="http://sandbox.test/netsuite",
        max_concurrency=1,
    )
    conn.credentials_set(
        {"client_id": netsuite_views.CLIENT_ID, "client_secret": netsuite_views.CLIENT_SECRET}
    )
    conn.save()
    return conn


@pytest.fixture
def netsuite(erp, transport) -> NetSuiteConnector:
    return NetSuiteConnector(ConnectionConfig.from_connection(erp), transport=transport)


@pytest.fixture
def project(sandbox, stripe):
    """A January of posted time on a project whose customer and job the ERP holds."""
    ledger = ledger_build(sandbox)
    project = f.ProjectFactory()
    customer_link(project.customer, stripe, erp_id=ledger["customer"])
    f.ExternalRefFactory(system="erp", record=project, external_id=ledger["job"])
    f.TimeEntryFactory(
        project=project,
        work_date=dt.date(2026, 1, 12),
        hours=Decimal("8.00"),
        bill_rate=Decimal("125.5000"),
        status=ApprovalStatus.POSTED,
    )
    return project


def cycle(transport) -> None:
    """The billing steps of a cycle with their deliveries, as `sync_cycle_run` runs them."""
    run = SyncRun.objects.create(
        kind=SyncRun.Kind.CYCLE, status=SyncRun.Status.RUNNING, started_at=timezone.now()
    )
    run.flow_counts = {}
    billing_cycle_run(run=run, now=FEBRUARY)
    deliveries_send_due(connector_options={"transport": transport})
    billing_follow_up(run=run, now=FEBRUARY, transport_for=lambda connection: transport)
    deliveries_send_due(connector_options={"transport": transport})


def erp_invoices(netsuite: NetSuiteConnector) -> list[dict]:
    pages = netsuite.suiteql("SELECT id, externalid, tranid, otherrefnum, total FROM invoice")
    return [row for page in pages for row in page.records]


def test_an_issued_invoice_gets_its_number_and_one_erp_invoice_keyed_by_it(
    billing, erp, transport, stripe, netsuite, project
):
    cycle(transport)  # the billing invoice, its number read back, the ERP invoice

    [issued] = stripe_invoices(stripe)
    ours = Invoice.objects.get()
    assert (ours.status, ours.number) == (Invoice.Status.OPEN, issued["number"])
    assert ours.issue_date is not None
    [posted] = erp_invoices(netsuite)
    assert (posted["externalid"], Decimal(str(posted["total"]))) == (
        issued["number"],
        Decimal("1004.00"),
    )
    ref = ExternalRef.objects.get(
        system="erp", object_id=str(ours.pk), content_type__model="invoice"
    )
    assert ref.external_id == str(posted["id"])
    record = netsuite.get_by_external_id(record_type="invoice", external_id=issued["number"])
    job = ExternalRef.objects.get(system="erp", content_type__model="project").external_id
    assert (record["job"]["id"], record["otherRefNum"]) == (job, issued["number"])


def test_more_cycles_and_a_replay_make_no_second_billing_or_erp_invoice(
    billing, erp, transport, stripe, netsuite, project
):
    for _ in range(3):
        cycle(transport)
    Delivery.objects.update(state=Delivery.State.PENDING, next_attempt_at=timezone.now())
    deliveries_send_due(connector_options={"transport": transport})
    cycle(transport)

    assert len(stripe_invoices(stripe)) == 1
    assert len(erp_invoices(netsuite)) == 1
    assert Invoice.objects.count() == 1


def test_without_an_erp_connection_the_invoice_is_opened_and_waits_for_the_erp(
    billing, transport, stripe, project
):
    cycle(transport)

    assert Invoice.objects.get().status == Invoice.Status.OPEN
    assert not Delivery.objects.filter(operation="erp.invoice.upsert").exists()
