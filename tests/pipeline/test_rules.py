"""Validation rules: each planted problem fails exactly its rule, in words finance understands."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from sync.pipeline.rules import Facts, money_at_risk, rules_check

GOOD = Facts(
    work_date=date(2026, 10, 14),
    project_ref="ws-1",
    task_ref="st-1",
    worker_ref="u-1",
    project_code="P-100",
    project_status="open",
    task_code="T-1",
    task_status="open",
    task_allows_time=True,
    worker_number="E-1",
    worker_status="active",
    worker_cost_centre="CC-1",
    legal_entity="UK01",
    currency="GBP",
    period_name="Oct 2026",
    period_status="open",
    customer_name="Acme",
    customer_status="approved",
    service_item="CONSULT",
)


def test_a_clean_posting_breaks_no_rule():
    assert rules_check(GOOD) == []


@pytest.mark.parametrize(
    ("change", "code", "queue", "words"),
    [
        (
            {"project_code": None, "project_status": None},
            "PROJECT_UNKNOWN",
            "project_setup",
            "ws-1",
        ),
        ({"project_status": "closed"}, "PROJECT_NOT_OPEN", "project_setup", "P-100 is closed"),
        ({"task_code": None}, "TASK_UNKNOWN", "project_setup", "st-1"),
        ({"task_status": "closed"}, "TASK_CLOSED", "project_setup", "T-1"),
        ({"task_allows_time": False}, "TASK_CLOSED", "project_setup", "does not allow time"),
        (
            {"worker_is_placeholder": True, "worker_number": None},
            "WORKER_IS_PLACEHOLDER",
            "project_setup",
            "role placeholder",
        ),
        ({"worker_number": None}, "WORKER_UNKNOWN", "time_and_expense", "u-1"),
        ({"worker_status": "terminated"}, "WORKER_NOT_ACTIVE", "time_and_expense", "terminated"),
        ({"worker_cost_centre": None}, "COST_CENTRE_MISSING", "time_and_expense", "E-1"),
        ({"legal_entity_mapped": False}, "LEGAL_ENTITY_UNMAPPED", "mapping", "UK01"),
        ({"currency_mapped": False}, "CURRENCY_UNMAPPED", "mapping", "GBP"),
        ({"service_item_mapped": False}, "SERVICE_ITEM_UNMAPPED", "mapping", "CONSULT"),
        ({"period_status": None}, "PERIOD_MISSING", "time_and_expense", "2026-10-14"),
        ({"period_status": "closed"}, "PERIOD_CLOSED", "time_and_expense", "Oct 2026"),
        (
            {"customer_status": "pending_approval"},
            "CUSTOMER_NOT_APPROVED",
            "customer_master",
            "Acme",
        ),
        ({"rate_found": False}, "RATE_NOT_FOUND", "billing", "rate card"),
    ],
)
def test_each_problem_fails_its_own_rule_with_a_readable_reason(change, code, queue, words):
    failures = rules_check(replace(GOOD, **change))
    assert [f.rule.code for f in failures] == [code]
    (failure,) = failures
    assert failure.rule.queue == queue
    assert words in failure.message
    assert failure.suggested_fix
    assert "{" not in failure.message + failure.suggested_fix


def test_non_billable_time_needs_no_rate():
    assert rules_check(replace(GOOD, billable=False, rate_found=False)) == []


def test_failures_with_one_cause_name_the_same_cause():
    one = rules_check(replace(GOOD, period_status="closed"))[0]
    two = rules_check(replace(GOOD, period_status="closed", worker_ref="u-2"))[0]
    other = rules_check(replace(GOOD, period_status="closed", period_name="Sep 2026"))[0]
    assert one.cause == two.cause == "Oct 2026"
    assert other.cause != one.cause


@pytest.mark.parametrize(
    ("hours", "rate", "expected"),
    [
        (Decimal("7.5"), Decimal("120.00"), Decimal("900.00")),
        (Decimal("0.25"), Decimal("99.99"), Decimal("25.00")),  # 24.9975 rounds half-up
        (Decimal("1"), None, None),
    ],
)
def test_money_at_risk_is_hours_times_rate_to_the_cent(hours, rate, expected):
    assert money_at_risk(hours=hours, bill_rate=rate) == expected
