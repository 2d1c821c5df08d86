"""Invoice candidates: what a completed month, a milestone and a month of usage bill, once."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from sync.models import Contract, InvoiceCandidate, Milestone, TimeEntry, UsageRecord
from sync.models.billing import InvoiceCandidateSource
from sync.models.transactions import ApprovalStatus
from sync.pipeline.billing.candidates import invoice_candidates_build
from sync.pipeline.billing.lines import SourceLine, lines_build
from sync.pipeline.models import ExceptionItem
from tests import factories as f

pytestmark = pytest.mark.django_db

JAN = dt.date(2026, 1, 1)
IN_FEBRUARY = dt.date(2026, 2, 10)  # January is complete, February is not
POSTED = ApprovalStatus.POSTED


def build(today: dt.date = IN_FEBRUARY):
    return invoice_candidates_build(today=today, actor="run:1")


def posted_time(project, *, day=JAN, hours="7.50", rate="150.0000", **values) -> TimeEntry:
    return f.TimeEntryFactory(
        project=project,
        work_date=day,
        hours=Decimal(hours),
        bill_rate=Decimal(rate),
        status=POSTED,
        **values,
    )


@pytest.fixture
def project():
    return f.ProjectFactory()


def test_posted_billable_time_of_a_completed_month_becomes_one_candidate_per_project(project):
    worker = f.WorkerFactory()
    posted_time(project, worker=worker, day=JAN)
    posted_time(project, worker=worker, day=JAN + dt.timedelta(days=1), hours="2.00")
    posted_time(f.ProjectFactory(), day=JAN)

    counts = build()

    candidate = InvoiceCandidate.objects.get(project=project)
    assert (candidate.source_kind, candidate.period_start) == ("time", JAN)
    assert candidate.amount == Decimal("1425.00")  # 9.5 h x 150
    assert candidate.status == InvoiceCandidate.Status.PENDING
    assert candidate.sources.count() == 2
    assert (counts.candidates, counts.sources) == (2, 3)


def test_time_of_the_current_month_waits_until_the_month_is_complete(project):
    posted_time(project, day=dt.date(2026, 2, 2))

    assert build().candidates == 0
    assert build(today=dt.date(2026, 3, 1)).candidates == 1


@pytest.mark.parametrize(
    ("status", "billable", "model"),
    [
        (ApprovalStatus.APPROVED, True, Contract.BillingModel.TIME_AND_MATERIALS),  # not posted
        (ApprovalStatus.REVERSED, True, Contract.BillingModel.TIME_AND_MATERIALS),
        (POSTED, False, Contract.BillingModel.TIME_AND_MATERIALS),
        (POSTED, True, Contract.BillingModel.FIXED_FEE_MILESTONES),
    ],
)
def test_time_that_is_not_posted_billable_t_and_m_work_is_not_billed(status, billable, model):
    project = f.ProjectFactory(contract__billing_model=model)
    f.TimeEntryFactory(project=project, work_date=JAN, status=status, billable=billable)

    assert build().candidates == 0


def test_a_second_run_bills_nothing_twice(project):
    posted_time(project)
    build()

    again = build()

    assert again.candidates == 0
    assert InvoiceCandidate.objects.count() == 1


def test_an_entry_posted_late_into_a_billed_month_becomes_a_new_candidate_for_that_month(
    project,
):
    posted_time(project)
    build()
    late = posted_time(project, day=JAN + dt.timedelta(days=20), hours="1.00")

    build()

    candidates = InvoiceCandidate.objects.filter(project=project).order_by("id")
    assert [(c.period_start, c.amount) for c in candidates] == [
        (JAN, Decimal("1125.00")),
        (JAN, Decimal("150.00")),
    ]
    assert candidates[1].sources.get().time_entry == late


def test_each_billed_record_is_linked_once_and_the_database_refuses_a_second_link(project):
    entry = posted_time(project)
    build()
    other = f.InvoiceCandidateFactory(project=project)

    with pytest.raises(Exception, match=r"(?i)unique"):
        InvoiceCandidateSource.objects.create(
            candidate=other,
            time_entry=entry,
            line_key="x",
            description="x",
            quantity=Decimal(1),
            unit_amount=Decimal(1),
        )


def test_a_line_is_a_worker_at_one_rate_rounded_once_half_up(project):
    worker = f.WorkerFactory()
    # 3 x 0.25 h at 33.3333: per entry 8.33 each (24.99 in all); the line is 24.999975 → 25.00.
    for day in range(3):
        posted_time(
            project, worker=worker, day=JAN + dt.timedelta(days=day), hours="0.25", rate="33.3333"
        )

    build()

    assert InvoiceCandidate.objects.get(project=project).amount == Decimal("25.00")


@pytest.mark.parametrize(
    ("sources", "amount"),
    [
        ([("a", "1", "0.005")], Decimal("0.01")),  # half-up, not banker's
        ([("a", "1", "0.015")], Decimal("0.02")),
        ([("a", "7.5", "150"), ("a", "0.5", "150")], Decimal("1200.00")),
        ([("a", "1", "10.004"), ("b", "1", "10.004")], Decimal("20.00")),  # rounded per line
    ],
)
def test_lines_round_their_exact_sum_once_half_up(sources, amount):
    lines = lines_build(
        sources=[SourceLine(k, k, Decimal(q), Decimal(u)) for k, q, u in sources], minor_units=2
    )

    assert sum(line.amount for line in lines) == amount


def test_posted_billable_expenses_join_the_months_time_candidate(project):
    posted_time(project)
    f.ExpenseFactory(project=project, incurred_date=JAN, amount=Decimal("42.10"), status=POSTED)
    f.ExpenseFactory(project=project, incurred_date=JAN, amount=Decimal("7.90"), status=POSTED)
    f.ExpenseFactory(project=project, incurred_date=JAN, billable=False, status=POSTED)

    build()

    candidate = InvoiceCandidate.objects.get(project=project)
    assert candidate.amount == Decimal("1175.00")  # 1125 + 42.10 + 7.90
    assert candidate.sources.filter(expense__isnull=False).count() == 2


def test_a_completed_milestone_becomes_a_candidate_of_its_amount(project):
    done = f.MilestoneFactory(
        project=project, amount=Decimal("12500.00"), status=Milestone.Status.COMPLETED
    )
    f.MilestoneFactory(project=project, status=Milestone.Status.PLANNED)

    build()
    build()

    candidate = InvoiceCandidate.objects.get()
    assert (candidate.source_kind, candidate.amount) == ("milestone", Decimal("12500.00"))
    assert candidate.sources.get().milestone == done


def test_a_contracts_month_of_usage_becomes_one_candidate(project):
    contract = f.ContractFactory(billing_model=Contract.BillingModel.USAGE)
    f.ProjectFactory(contract=contract, customer=contract.customer)
    for quantity in ("1000", "250"):
        f.UsageRecordFactory(
            contract=contract,
            quantity=Decimal(quantity),
            unit_price=Decimal("0.0125"),
            period_date=JAN,
        )
    f.UsageRecordFactory(contract=contract, period_date=dt.date(2026, 2, 1))  # month not over
    f.UsageRecordFactory(contract=contract, period_date=JAN, status=UsageRecord.Status.VOID)

    build()

    candidate = InvoiceCandidate.objects.get(source_kind="usage")
    assert (candidate.period_start, candidate.amount) == (JAN, Decimal("15.63"))  # 15.625 up
    assert candidate.sources.count() == 2


def test_usage_of_a_contract_without_a_project_waits_as_an_exception_item():
    contract = f.ContractFactory(billing_model=Contract.BillingModel.USAGE)
    f.UsageRecordFactory(contract=contract, period_date=JAN)

    build()

    assert not InvoiceCandidate.objects.exists()
    item = ExceptionItem.objects.get()
    assert item.code == "USAGE_CONTRACT_WITHOUT_PROJECT"


def test_billable_time_without_a_bill_rate_is_held_and_reported(project):
    posted_time(project, rate="0")

    counts = build()

    assert (counts.candidates, counts.held) == (0, 1)
    assert ExceptionItem.objects.get().code == "TIME_BILL_RATE_MISSING"


def test_amounts_keep_their_currency_one_candidate_per_currency(project):
    posted_time(project, currency=f.CurrencyFactory(code="EUR"))
    posted_time(project, currency=f.CurrencyFactory(code="USD"))

    counts = build()

    assert sorted(InvoiceCandidate.objects.values_list("currency_id", flat=True)) == [
        "EUR",
        "USD",
    ]
    assert counts.amounts == {"EUR": Decimal("1125.00"), "USD": Decimal("1125.00")}
