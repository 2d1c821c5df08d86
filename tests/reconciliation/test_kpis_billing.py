"""Billing and set-up KPIs on hand-made data; the answers are worked from docs/kpis.md."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from reconciliation.kpis_billing import (
    kpi_approved_to_invoiced_lag,
    kpi_invoice_cycle_time,
    kpi_project_setup_sla,
)
from sync.models import ExternalRef, InvoiceCandidate
from sync.models.billing import InvoiceCandidateSource
from sync.models.transactions import ApprovalStatus
from tests import factories as f

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 11, 30)
ISSUED = dt.date(2026, 11, 5)


def _noon(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(12)))


def _billed(project, *, approved: dt.date, hours: str, issued: dt.date = ISSUED, **candidate):
    """A time entry approved on `approved`, billed (at 100.00) on an invoice issued `issued`."""
    entry = f.TimeEntryFactory(
        project=project,
        status=ApprovalStatus.INVOICED,
        approved_at=_noon(approved),
        hours=Decimal(hours),
        bill_rate=Decimal("100.00"),
    )
    made = f.InvoiceCandidateFactory(
        project=project, status=InvoiceCandidate.Status.INVOICED, **candidate
    )
    InvoiceCandidateSource.objects.create(
        candidate=made,
        time_entry=entry,
        line_key="w",
        description="Consulting",
        quantity=Decimal(hours),
        unit_amount=Decimal("100.00"),
    )
    invoice = f.InvoiceFactory(customer=project.customer, issue_date=issued, due_date=issued)
    f.InvoiceLineFactory(invoice=invoice, candidate=made)
    return made


def test_lag_weighs_invoiced_and_waiting_time_by_amount():
    project = f.ProjectFactory()
    _billed(project, approved=dt.date(2026, 10, 1), hours="8")  # 35 days, 800.00
    _billed(project, approved=dt.date(2026, 10, 20), hours="2")  # 16 days, 200.00
    f.TimeEntryFactory(  # not invoiced: 20 days so far, 1,000.00
        project=project,
        status=ApprovalStatus.POSTED,
        approved_at=_noon(dt.date(2026, 11, 10)),
        hours=Decimal("10"),
        bill_rate=Decimal("100.00"),
    )

    # Sorted by days: 16 (200), 20 (1,000), 35 (800) of 2,000: half is reached at 20 days,
    # nine tenths (1,800) at 35.
    assert kpi_approved_to_invoiced_lag(as_of=AS_OF) == {
        "EUR": {
            "median_days": "20",
            "p90_days": "35",
            "invoiced_amount": "1000.00",
            "waiting_amount": "1000.00",
        }
    }


def test_lag_without_invoices_or_approved_time_is_empty():
    assert kpi_approved_to_invoiced_lag(as_of=AS_OF) == {}


def test_invoice_cycle_time_counts_from_the_end_of_the_billed_month():
    project = f.ProjectFactory()
    _billed(project, approved=dt.date(2026, 10, 1), hours="1", period_start=dt.date(2026, 10, 1))
    _billed(
        project,
        approved=dt.date(2026, 9, 1),
        hours="1",
        period_start=dt.date(2026, 9, 1),
        source_kind=InvoiceCandidate.SourceKind.USAGE,
    )
    _billed(  # issued before the 90-day window: left out
        project, approved=dt.date(2026, 6, 1), hours="1", issued=dt.date(2026, 7, 1),
        period_start=dt.date(2026, 6, 1),
    )  # fmt: skip

    assert kpi_invoice_cycle_time(as_of=AS_OF) == {
        "time": {"invoices": 1, "median_days": "5.0"},  # 31 October → 5 November
        "usage": {"invoices": 1, "median_days": "36.0"},  # 30 September → 5 November
    }


def test_project_setup_sla_from_won_deal_to_erp_job():
    def project(closed: dt.date, job_made: dt.date | None):
        made = f.ProjectFactory(contract__opportunity=f.OpportunityFactory(close_date=closed))
        if job_made is not None:
            ref = f.ExternalRefFactory(record=made, system=ExternalRef.System.ERP)
            ExternalRef.objects.filter(pk=ref.pk).update(created_at=_noon(job_made))

    project(dt.date(2026, 11, 20), dt.date(2026, 11, 21))  # 1 day: within 2
    project(dt.date(2026, 11, 10), dt.date(2026, 11, 16))  # 6 days: late
    project(dt.date(2026, 11, 25), None)  # waiting 5 days
    f.ProjectFactory(contract__opportunity=None)  # no won deal: not counted

    assert kpi_project_setup_sla(as_of=AS_OF) == {
        "target_days": 2,
        "set_up": 2,
        "median_days": "3.5",
        "within_target": 1,
        "waiting": 1,
        "oldest_waiting_days": 5,
    }
