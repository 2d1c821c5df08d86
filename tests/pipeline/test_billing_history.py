"""What billing billed before Ledgerbridge is never billed again: its invoices' project months
are learned from the pulled invoices, and the work of those months is linked to them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from sync.models import ExternalRef, InvoiceCandidate, TimeEntry
from sync.models.transactions import ApprovalStatus
from sync.pipeline.billing.candidates import invoice_candidates_build
from sync.pipeline.billing.history import billed_invoices_process
from sync.pipeline.inbox import inbox_store
from sync.pipeline.models import Connection, InboxItem, SyncRun, TargetRecord
from tests import factories as f

pytestmark = pytest.mark.django_db

JAN = dt.date(2026, 1, 7)
IN_MARCH = dt.date(2026, 3, 2)


@pytest.fixture
def billing() -> Connection:
    return Connection.objects.create(
        name="stripe", system="billing", dialect="stripe", base_url="http://127.0.0.1:9/stripe"
    )


def invoice(invoice_id: str, **metadata) -> tuple[str, dict]:
    return invoice_id, {"id": invoice_id, "status": "paid", "number": "X-1", "metadata": metadata}


def process(billing, rows) -> object:
    stored = inbox_store(system="billing", entity="invoices", records=rows, connection=billing)
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    return billed_invoices_process(inbox_ids=[i.id for i in stored.new], run=run)


def test_pulled_invoices_record_the_project_months_billing_billed_once(billing):
    rows = [
        invoice("in_1", project_key="P-1", period="2026-01"),
        invoice("in_2", project_key="P-1", period="2026-01"),  # a second invoice, same month
        invoice("in_3", ledgerbridge_id="LB-IC-9", project_key="P-1", period="2026-02"),  # ours
        invoice("in_4", project_key="P-1", milestone_key="M-1"),  # names no month
        invoice("in_5", project_key="P-1", period="January"),
    ]

    counts = process(billing, rows)
    InboxItem.objects.update(status="pending")
    again = billed_invoices_process(
        inbox_ids=list(InboxItem.objects.values_list("id", flat=True)),
        run=SyncRun.objects.create(kind="replay", started_at=timezone.now()),
    )

    (record,) = TargetRecord.objects.filter(record_type="billedPeriod")
    assert (record.external_id, record.target_id) == ("P-1/2026-01", "in_1")
    assert (counts.created, again.created) == (1, 0)


def test_a_pulled_invoice_that_is_not_one_is_parked_as_malformed(billing):
    process(billing, [("x", {"id": 42, "metadata": {}})])

    assert InboxItem.objects.get().status == "parked"


@pytest.fixture
def billed_month(billing):
    """A project with two posted January entries; billing billed its January already."""
    project = f.ProjectFactory(code="P-1")
    entries = [
        f.TimeEntryFactory(project=project, work_date=JAN, status=ApprovalStatus.POSTED)
        for _ in range(2)
    ]
    process(billing, [invoice("in_1", project_key="P-1", period="2026-01")])
    return project, entries


@pytest.mark.usefixtures("billed_month")
def test_work_of_a_month_billed_before_ledgerbridge_is_linked_and_not_billed_again():
    counts = invoice_candidates_build(today=IN_MARCH, actor="run:1")
    invoice_candidates_build(today=IN_MARCH, actor="run:2")

    candidate = InvoiceCandidate.objects.get()
    assert candidate.status == InvoiceCandidate.Status.INVOICED
    assert ExternalRef.objects.for_record(candidate).get().external_id == "in_1"
    assert counts.billed_before == 1
    assert set(TimeEntry.objects.values_list("status", flat=True)) == {ApprovalStatus.INVOICED}


def test_work_posted_into_a_billed_month_afterwards_is_new_work_to_bill(billed_month):
    project, _ = billed_month
    invoice_candidates_build(today=IN_MARCH, actor="run:1")
    late = f.TimeEntryFactory(
        project=project, work_date=JAN, hours=Decimal("1.00"), status=ApprovalStatus.POSTED
    )

    invoice_candidates_build(today=IN_MARCH, actor="run:2")

    pending = InvoiceCandidate.objects.get(status=InvoiceCandidate.Status.PENDING)
    assert pending.sources.get().time_entry == late


def test_a_month_billing_never_billed_is_billed(billed_month):
    project, _ = billed_month
    february = f.TimeEntryFactory(
        project=project, work_date=dt.date(2026, 2, 3), status=ApprovalStatus.POSTED
    )

    invoice_candidates_build(today=IN_MARCH, actor="run:1")

    pending = InvoiceCandidate.objects.get(status=InvoiceCandidate.Status.PENDING)
    assert pending.sources.get().time_entry == february
