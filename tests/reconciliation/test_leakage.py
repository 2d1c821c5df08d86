"""Revenue leakage by cause on small hand-made firms; the answers are worked from docs/kpis.md."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from reconciliation.leakage import leakage_records, leakage_rows, leakage_totals
from reconciliation.rollup import time_rollup_refresh
from reconciliation.scope import Scope
from sync.models import Invoice, Milestone, Payment, UsageRecord
from sync.models.transactions import ApprovalStatus
from tests import factories as f

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 11, 30)
# Time of a month leaks once the month ended LEAKAGE_UNBILLED_DAYS (30) ago: on 30 November,
# October's time (ended 31 October) leaks, November's does not yet.
OLD = dt.date(2026, 10, 16)
RECENT = dt.date(2026, 11, 2)


@pytest.fixture
def firm():
    uk = f.LegalEntityFactory(code="LB-UK")
    nl = f.LegalEntityFactory(code="LB-NL")
    uk_project = f.ProjectFactory(code="UK-1", legal_entity=uk, customer__legal_entity=uk)
    nl_project = f.ProjectFactory(code="NL-1", legal_entity=nl, customer__legal_entity=nl)
    delivery = f.CostCentreFactory(code="DELIVERY", legal_entity=uk)
    advisory = f.CostCentreFactory(code="ADVISORY", legal_entity=uk)
    return {
        "uk": uk_project,
        "nl": nl_project,
        "delivery": f.WorkerFactory(cost_centre=delivery, legal_entity=uk),
        "advisory": f.WorkerFactory(cost_centre=advisory, legal_entity=uk),
    }


def _time(project, worker, *, hours, rate, day=OLD, status=ApprovalStatus.POSTED, **more):
    return f.TimeEntryFactory(
        project=project,
        worker=worker,
        hours=Decimal(hours),
        bill_rate=Decimal(rate),
        work_date=day,
        status=status,
        **more,
    )


def test_approved_time_older_than_the_grace_is_leakage_per_project_and_currency(firm):
    uk, nl, dev = firm["uk"], firm["nl"], firm["delivery"]
    _time(uk, dev, hours="7.5", rate="100.00")  # 750.00
    _time(uk, dev, hours="2.25", rate="133.33", status=ApprovalStatus.APPROVED)  # 299.9925
    _time(uk, dev, hours="8", rate="100.00", day=RECENT)  # its month has not ended: not yet
    _time(uk, dev, hours="8", rate="100.00", day=dt.date(2026, 10, 31))  # 30 days since: leaks
    _time(uk, dev, hours="8", rate="100.00", billable=False)  # not billable
    _time(uk, dev, hours="8", rate="100.00", status=ApprovalStatus.INVOICED)  # billed
    _time(uk, dev, hours="8", rate="100.00", status=ApprovalStatus.SUBMITTED)  # not approved
    _time(nl, dev, hours="1", rate="90.00", currency=f.CurrencyFactory(code="USD"))

    time_rollup_refresh()
    rows = leakage_rows(as_of=AS_OF, scope=Scope(), causes=("unbilled_time",))

    assert [(r.project, r.legal_entity, r.currency, r.records, r.amount) for r in rows] == [
        ("UK-1", "LB-UK", "EUR", 3, Decimal("1849.99")),  # 1,849.9925 rounded half-up once
        ("NL-1", "LB-NL", "USD", 1, Decimal("90.00")),
    ]


def test_scope_narrows_by_legal_entity_business_unit_and_period(firm):
    uk, nl = firm["uk"], firm["nl"]
    _time(uk, firm["delivery"], hours="1", rate="100.00")
    _time(uk, firm["advisory"], hours="2", rate="100.00")
    _time(nl, firm["delivery"], hours="4", rate="100.00")
    _time(uk, firm["delivery"], hours="8", rate="100.00", day=OLD - dt.timedelta(days=60))

    time_rollup_refresh()

    def total(scope):
        rows = leakage_rows(as_of=AS_OF, scope=scope, causes=("unbilled_time",))
        return sum((r.amount for r in rows), Decimal(0))

    assert total(Scope()) == Decimal("1500.00")
    assert total(Scope(legal_entity="LB-UK")) == Decimal("1100.00")
    assert total(Scope(legal_entity="LB-UK", business_unit="ADVISORY")) == Decimal("200.00")
    month = Scope(period_from=OLD.replace(day=1), period_to=OLD.replace(day=28))
    assert total(month) == Decimal("700.00")  # the 60-days-older entry is outside the month


def test_milestones_usage_and_write_offs_each_count_as_their_cause(firm):
    uk = firm["uk"]
    f.MilestoneFactory(
        project=uk, amount=Decimal("5000.00"), status=Milestone.Status.COMPLETED, due_date=OLD
    )
    f.MilestoneFactory(  # invoiced: billed, no leakage
        project=uk, amount=Decimal("7000.00"), status=Milestone.Status.INVOICED, due_date=OLD
    )
    f.MilestoneFactory(  # due 2 days ago: inside the 7-day grace
        project=uk,
        amount=Decimal("3000.00"),
        status=Milestone.Status.COMPLETED,
        due_date=AS_OF - dt.timedelta(days=2),
    )
    f.UsageRecordFactory(
        contract=uk.contract,
        quantity=Decimal("1200"),
        unit_price=Decimal("0.125"),
        status=UsageRecord.Status.RATED,
        period_date=OLD,
    )
    bad = f.InvoiceFactory(
        customer=uk.customer,
        total=Decimal("1000.00"),
        status=Invoice.Status.UNCOLLECTIBLE,
        issue_date=OLD,
        due_date=OLD,
    )
    f.PaymentFactory(invoice=bad, amount=Decimal("400.00"), received_date=OLD)
    f.PaymentFactory(  # reversed: not cash
        invoice=bad, amount=Decimal("100.00"), received_date=OLD, status=Payment.Status.REVERSED
    )

    totals = leakage_totals(leakage_rows(as_of=AS_OF, scope=Scope()))

    assert totals == {
        "milestone_not_invoiced": {"EUR": Decimal("5000.00")},
        "usage_not_billed": {"EUR": Decimal("150.00")},
        "write_off": {"EUR": Decimal("600.00")},
    }


def test_the_records_behind_a_figure_add_up_to_it(firm):
    uk, nl, dev = firm["uk"], firm["nl"], firm["delivery"]
    for days_before, hours in ((0, "1"), (2, "3"), (1, "2")):
        day = OLD - dt.timedelta(days=days_before)
        _time(uk, dev, hours=hours, rate="100.00", psa_id=f"te-{hours}", day=day)
    _time(nl, dev, hours="5", rate="100.00")

    table = leakage_records(cause="unbilled_time", as_of=AS_OF, scope=Scope(), project="UK-1")
    rows = list(table.all_rows())

    amount = table.columns.index("Amount")
    # By project and work date, the order the (project, work date) index reads them in.
    assert [r[table.columns.index("PSA id")] for r in rows] == ["te-3", "te-2", "te-1"]
    assert sum(r[amount] for r in rows) == Decimal("600")
    time_rollup_refresh()
    [row] = leakage_rows(as_of=AS_OF, scope=Scope(legal_entity="LB-UK"), causes=("unbilled_time",))
    assert row.amount == Decimal("600.00")


def test_a_month_leaks_once_it_ended_the_grace_days_ago(settings):
    from reconciliation.leakage import unbilled_cutoff

    settings.LEAKAGE_UNBILLED_DAYS = 30
    assert unbilled_cutoff(dt.date(2026, 11, 30)) == dt.date(2026, 10, 31)
    assert unbilled_cutoff(dt.date(2026, 11, 29)) == dt.date(
        2026, 9, 30
    )  # October ended 29 days ago
    assert unbilled_cutoff(dt.date(2026, 3, 3)) == dt.date(2026, 1, 31)  # February: 28 days
    settings.LEAKAGE_UNBILLED_DAYS = 0
    assert unbilled_cutoff(dt.date(2026, 11, 30)) == dt.date(2026, 11, 30)


def test_the_rollup_sums_what_the_entries_hold(firm):
    from reconciliation.rollup import time_waiting, unbilled_by_month

    uk, dev = firm["uk"], firm["delivery"]
    _time(uk, dev, hours="1.5", rate="120.00", status=ApprovalStatus.SUBMITTED, day=OLD)
    _time(uk, dev, hours="2", rate="100.00", status=ApprovalStatus.SUBMITTED, day=RECENT)
    _time(uk, dev, hours="3", rate="100.00", status=ApprovalStatus.POSTED, day=RECENT)
    _time(
        uk, dev, hours="4", rate="100.00", status=ApprovalStatus.POSTED, day=RECENT, billable=False
    )
    _time(uk, dev, hours="9", rate="100.00", status=ApprovalStatus.INVOICED, day=RECENT)
    time_rollup_refresh()

    [waiting] = time_waiting(scope=Scope(), status=ApprovalStatus.SUBMITTED)
    assert (waiting.entries, waiting.hours, waiting.value, waiting.oldest) == (
        2,
        Decimal("3.5"),
        Decimal("380"),
        OLD,
    )
    assert unbilled_by_month(scope=Scope()) == [(dt.date(2026, 11, 1), "EUR", 1, Decimal("300"))]
    assert time_waiting(scope=Scope(business_unit="ADVISORY"), status="submitted") == []
