"""The Kantata expense reader, the NetSuite expense report body and row reader, and the expense
posting rules: pure, no database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.errors import PayloadError
from sync.integrations.kantata.expenses import MAX_AMOUNT_CENTS, expense_read
from sync.integrations.netsuite.expense_reports import expense_report_body, expense_report_read
from sync.pipeline.expense_posting.rules import EXPENSE_RULES, expense_at_risk, expense_rules_check
from sync.pipeline.rules import Facts

GOOD = {
    "id": "77",
    "workspace_id": "5",
    "user_id": "9",
    "date": "2026-10-14",
    "category": "Train",
    "amount_in_cents": 4_250,
    "currency": "eur",
    "billable": False,
    "approved": True,
    "approval_status": "approved",
    "notes": "ignored",
}


def test_a_kantata_expense_reads_into_exact_money_with_its_currency():
    p = expense_read(GOOD)
    assert (p.external_id, p.workspace_id, p.user_id) == ("77", "5", "9")
    assert (p.incurred_date, p.amount, p.currency) == (
        dt.date(2026, 10, 14),
        Decimal("42.50"),
        "EUR",
    )
    assert (p.category, p.billable, p.approved, p.rejected) == ("Train", False, True, False)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"amount_in_cents": 42.5}, "amount_in_cents"),
        ({"amount_in_cents": "4250"}, "amount_in_cents"),
        ({"amount_in_cents": 0}, "amount_in_cents"),
        ({"amount_in_cents": -100}, "amount_in_cents"),
        ({"amount_in_cents": MAX_AMOUNT_CENTS + 1}, "amount_in_cents"),
        ({"currency": "EURO"}, "currency"),
        ({"date": "14/10/2026"}, "date"),
        ({"id": None}, "id"),
        ({"id": "9" * 300}, "id"),
        ({"approved": "yes"}, "approved"),
        ({"category": ""}, "category"),
        ({"workspace_id": True}, "workspace_id"),
    ],
)
def test_an_expense_field_it_cannot_read_is_named(change, named):
    with pytest.raises(PayloadError, match=f"`{named}`"):
        expense_read({**GOOD, **change})


def test_every_refused_field_is_named_at_once():
    with pytest.raises(PayloadError) as refused:
        expense_read({**GOOD, "amount_in_cents": 1.5, "currency": 3, "user_id": None})
    assert all(name in str(refused.value) for name in ("amount_in_cents", "currency", "user_id"))


def test_a_rejected_expense_reads_as_rejected_and_a_resubmitted_one_only_as_unapproved():
    rejected = expense_read({**GOOD, "approved": False, "approval_status": "rejected"})
    submitted = expense_read({**GOOD, "approved": False, "approval_status": "submitted"})
    assert (rejected.approved, rejected.rejected) == (False, True)
    assert (submitted.approved, submitted.rejected) == (False, False)


@given(st.integers(min_value=1, max_value=MAX_AMOUNT_CENTS))
def test_any_whole_number_of_cents_reads_back_exactly(cents):
    amount = expense_read({**GOOD, "amount_in_cents": cents}).amount
    assert amount * 100 == cents
    assert amount.as_tuple().exponent == -2


def test_the_report_body_carries_one_exact_line_and_the_void_only_changes_its_status():
    common = {
        "psa_id": "77",
        "incurred_date": dt.date(2026, 10, 14),
        "amount": Decimal("42.50"),
        "billable": True,
        "category": "Travel",
        "subsidiary": "3",
        "currency": None,
        "employee": {"id": "12"},
        "customer": {"externalId": "P-100"},
        "department": None,
    }
    body = expense_report_body(**common)
    void = expense_report_body(**common, rejected=True)
    assert body["externalId"] == "KT-EX-77"
    assert body["expense"]["items"][0]["amount"] == "42.50"  # a string: never a float
    assert (body["approvalStatus"], void["approvalStatus"]) == ({"id": "2"}, {"id": "3"})
    assert {k: v for k, v in void.items() if k != "approvalStatus"} == {
        k: v for k, v in body.items() if k != "approvalStatus"
    }


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"id": "10", "externalid": "KT-EX-1"}, ("10", "KT-EX-1")),
        ({"id": 11, "externalid": ""}, ("11", None)),
    ],
)
def test_an_erp_expense_report_row_reads_its_id_and_key(row, expected):
    report = expense_report_read(row)
    assert (report.internal_id, report.external_id) == expected


def test_an_erp_expense_report_row_without_a_numeric_id_is_refused():
    with pytest.raises(PayloadError, match="`id`"):
        expense_report_read({"id": "abc", "externalid": "KT-EX-1"})


def facts(**change) -> Facts:
    values = {
        "work_date": dt.date(2026, 10, 14),
        "project_ref": "5",
        "task_ref": "",
        "worker_ref": "9",
        "project_code": "P-100",
        "project_status": "open",
        "worker_number": "E-1",
        "worker_status": "active",
        "worker_cost_centre": "CC-1",
        "legal_entity": "UK01",
        "currency": "GBP",
        "period_name": "Oct 2026",
        "period_status": "open",
        "customer_name": "Acme",
        "customer_status": "approved",
    }
    values.update(change)
    return Facts(**values)


def test_an_expense_with_no_task_and_no_rate_passes_the_rules():
    assert expense_rules_check(facts(task_code=None), category="Hotel", category_mapped=True) == []


@pytest.mark.parametrize(
    ("change", "mapped", "code"),
    [
        ({"project_code": None}, True, "PROJECT_UNKNOWN"),
        ({"worker_cost_centre": None}, True, "COST_CENTRE_MISSING"),
        ({"currency_mapped": False}, False, "CURRENCY_UNMAPPED"),
        ({}, False, "EXPENSE_CATEGORY_UNMAPPED"),
        ({"period_status": "closed"}, False, "EXPENSE_CATEGORY_UNMAPPED"),  # fixing order
        ({"period_status": "closed"}, True, "PERIOD_CLOSED"),
    ],
)
def test_the_first_rule_to_fix_comes_first(change, mapped, code):
    broken = expense_rules_check(facts(**change), category="Hotel", category_mapped=mapped)
    assert broken[0].rule.code == code


def test_no_expense_rule_judges_a_task_or_a_rate():
    codes = {rule.code for rule, _ in EXPENSE_RULES}
    assert not codes & {"TASK_UNKNOWN", "TASK_CLOSED", "RATE_NOT_FOUND"}
    assert all("Time was" not in rule.message for rule, _ in EXPENSE_RULES)


@pytest.mark.parametrize(
    ("amount", "at_risk"),
    [(Decimal("42.50"), Decimal("42.50")), (Decimal("0.005"), Decimal("0.01"))],
)
def test_money_at_risk_is_the_amount_to_the_cent_half_up(amount, at_risk):
    assert expense_at_risk(amount) == at_risk
