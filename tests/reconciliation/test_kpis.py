"""KPIs read from the database, on small hand-made firms; answers worked from docs/kpis.md."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from reconciliation.kpis import (
    kpi_dso,
    kpi_mttr,
    kpi_queue_backlog,
    kpi_time_waiting,
    kpi_unbilled_time,
    kpis_compute,
)
from sync.models import Invoice, Payment
from sync.models.transactions import ApprovalStatus
from sync.pipeline.models import ExceptionItem
from tests import factories as f

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 11, 15)


def _invoice(total: str, issued: dt.date, *, currency: str = "EUR", status=Invoice.Status.OPEN):
    return f.InvoiceFactory(
        total=Decimal(total),
        issue_date=issued,
        status=status,
        currency=f.CurrencyFactory(code=currency),
    )


def test_dso_without_invoices_reports_nothing():
    assert kpi_dso(as_of=AS_OF) == {}


def test_dso_counts_partial_payments_per_currency_and_ignores_void_drafts_and_reversals():
    october = _invoice("2000.00", dt.date(2026, 10, 10))
    november = _invoice("1000.00", dt.date(2026, 11, 3))
    f.PaymentFactory(invoice=october, amount=Decimal("1500.00"), received_date=dt.date(2026, 11, 1))
    # A reversed payment and one after the day asked about do not reduce the receivables.
    f.PaymentFactory(
        invoice=november,
        amount=Decimal("400.00"),
        received_date=dt.date(2026, 11, 5),
        status=Payment.Status.REVERSED,
    )
    f.PaymentFactory(
        invoice=november, amount=Decimal("1000.00"), received_date=dt.date(2026, 11, 20)
    )
    _invoice("9999.00", dt.date(2026, 11, 4), status=Invoice.Status.VOID)
    _invoice("8888.00", dt.date(2026, 11, 4), status=Invoice.Status.DRAFT)
    # Another currency keeps its own figure: 300 receivable against 600 sold this month.
    _invoice("600.00", dt.date(2026, 11, 1), currency="USD")
    f.PaymentFactory(
        invoice=Invoice.objects.get(currency_id="USD"),
        amount=Decimal("300.00"),
        received_date=dt.date(2026, 11, 2),
    )

    dso = kpi_dso(as_of=AS_OF)

    # EUR: receivables 3,000 - 1,500 = 1,500; November sold 1,000 (15 days), October 2,000:
    # 15 + 31 x 500 / 2,000 = 22.75 → 22.8 days.
    assert dso["EUR"] == {"receivables": "1500.00", "days": "22.8"}
    # USD: 300 of November's 600: 15 x 0.5 = 7.5 days.
    assert dso["USD"] == {"receivables": "300.00", "days": "7.5"}


def test_unbilled_time_is_billable_approved_or_posted_time_at_bill_rate_by_age():
    eur = f.CurrencyFactory(code="EUR")
    entry = {"currency": eur, "hours": Decimal("2.00"), "bill_rate": Decimal("100.0000")}
    f.TimeEntryFactory(status=ApprovalStatus.APPROVED, work_date=AS_OF, **entry)
    f.TimeEntryFactory(
        status=ApprovalStatus.POSTED, work_date=AS_OF - dt.timedelta(days=45), **entry
    )
    f.TimeEntryFactory(
        status=ApprovalStatus.POSTED, work_date=AS_OF - dt.timedelta(days=120), **entry
    )
    # Not WIP: invoiced, only submitted, not billable, or done after the day asked about.
    f.TimeEntryFactory(status=ApprovalStatus.INVOICED, work_date=AS_OF, **entry)
    f.TimeEntryFactory(status=ApprovalStatus.SUBMITTED, work_date=AS_OF, **entry)
    f.TimeEntryFactory(status=ApprovalStatus.APPROVED, work_date=AS_OF, billable=False, **entry)
    f.TimeEntryFactory(
        status=ApprovalStatus.APPROVED, work_date=AS_OF + dt.timedelta(days=1), **entry
    )

    wip = kpi_unbilled_time(as_of=AS_OF)

    assert wip == {
        "EUR": {
            "value": "600.00",
            "entries": 3,
            "by_age": {"0-30": "200.00", "31-60": "200.00", "90+": "200.00"},
        }
    }


def test_approval_backlog_and_unposted_time_count_hours_value_and_age():
    eur = f.CurrencyFactory(code="EUR")
    f.TimeEntryFactory(
        status=ApprovalStatus.SUBMITTED,
        work_date=AS_OF - dt.timedelta(days=9),
        hours=Decimal("1.50"),
        bill_rate=Decimal("80.0000"),
        currency=eur,
    )
    f.TimeEntryFactory(
        status=ApprovalStatus.SUBMITTED,
        work_date=AS_OF - dt.timedelta(days=2),
        hours=Decimal("3.00"),
        bill_rate=Decimal("80.0000"),
        currency=eur,
    )
    f.TimeEntryFactory(status=ApprovalStatus.APPROVED, work_date=AS_OF, currency=eur)

    backlog = kpi_time_waiting(status=ApprovalStatus.SUBMITTED, as_of=AS_OF)
    unposted = kpi_time_waiting(status=ApprovalStatus.APPROVED, as_of=AS_OF)

    assert backlog == {"EUR": {"entries": 2, "hours": "4.50", "value": "360.00", "oldest_days": 9}}
    # The factory's entry: 7.5 h x 150 = 1,125.
    assert unposted == {
        "EUR": {"entries": 1, "hours": "7.50", "value": "1125.00", "oldest_days": 0}
    }


def _item(key: str, *, queue: str, failed: dt.datetime, **fields) -> ExceptionItem:
    values = {
        "queue": queue,
        "stage": "validate",
        "code": "PROJECT_UNKNOWN",
        "category": "business",
        "message": "m",
        "record_key": key,
        "root_cause": "PROJECT_UNKNOWN",
        "cause": "PROJECT_UNKNOWN",
        "first_failed_at": failed,
        "last_failed_at": failed,
        "sla_due_at": failed + dt.timedelta(hours=24),
        **fields,
    }
    return ExceptionItem.objects.create(**values)


def test_queue_backlog_and_mttr_per_queue():
    now = timezone.now()
    day = dt.timedelta(days=1)
    _item(
        "a",
        queue="time_and_expense",
        failed=now - 3 * day,
        money_at_risk=Decimal("100.00"),
        currency="EUR",
    )
    _item(
        "b",
        queue="time_and_expense",
        failed=now - dt.timedelta(hours=1),
        money_at_risk=Decimal("50.50"),
        currency="EUR",
    )
    _item(
        "c",
        queue="time_and_expense",
        failed=now - day - dt.timedelta(hours=1),
        money_at_risk=Decimal("20.00"),
        currency="USD",
    )
    _item("d", queue="project_setup", failed=now - dt.timedelta(hours=2))  # no amount
    # Resolved: 6 h and 2 h after their failures; one resolved long ago is outside the window.
    resolved = ExceptionItem.Status.RESOLVED
    _item(
        "e",
        queue="project_setup",
        failed=now - day,
        status=resolved,
        closed_at=now - day + dt.timedelta(hours=6),
    )
    _item(
        "g",
        queue="project_setup",
        failed=now - day,
        status=resolved,
        closed_at=now - day + dt.timedelta(hours=2),
    )
    _item(
        "h", queue="project_setup", failed=now - 90 * day, status=resolved, closed_at=now - 80 * day
    )

    backlog = kpi_queue_backlog(now=now)
    mttr = kpi_mttr(now=now)

    assert backlog["time_and_expense"] == {
        "open": 3,
        "past_sla": 2,
        "oldest_days": 3,
        "money_at_risk": {"EUR": "150.50", "USD": "20.00"},
    }
    assert backlog["project_setup"] == {
        "open": 1,
        "past_sla": 0,
        "oldest_days": 0,
        "money_at_risk": {},
    }
    assert mttr == {"project_setup": {"resolved": 2, "mean_hours": "4.0"}}


def test_the_command_prints_the_report_as_json(capsys):
    f.TimeEntryFactory(status=ApprovalStatus.APPROVED, work_date=AS_OF)
    call_command("kpis", "--as-of", "2026-11-15", "--json")
    out = capsys.readouterr().out
    assert '"as_of": "2026-11-15"' in out
    assert '"value": "1125.00"' in out
    assert kpis_compute(as_of=AS_OF)["unposted_time"]["EUR"]["entries"] == 1


def test_a_day_keeps_one_snapshot_with_its_latest_values():
    from reconciliation.models import KpiSnapshot
    from reconciliation.services import kpi_snapshot_take

    kpi_snapshot_take(day=AS_OF)
    assert KpiSnapshot.objects.get(day=AS_OF).values["unposted_time"] == {}
    f.TimeEntryFactory(status=ApprovalStatus.APPROVED, work_date=AS_OF)
    kpi_snapshot_take(day=AS_OF)

    snapshot = KpiSnapshot.objects.get(day=AS_OF)
    assert snapshot.values["unposted_time"]["EUR"]["value"] == "1125.00"
    assert KpiSnapshot.objects.count() == 1


def test_beat_takes_the_snapshot_with_a_registered_task():
    from portal.celery import _beat_schedule, app

    entry = _beat_schedule()["reconciliation-kpi-snapshot"]
    assert entry["task"] in app.tasks
