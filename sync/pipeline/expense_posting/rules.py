"""The posting rules an expense must pass before it reaches the ERP. Pure: no DB.

The time-posting rules (sync.pipeline.rules), same codes, checks, queues and causes, so one
root cause groups time and expense items alike, minus the ones that judge what an expense does
not have (a WBS task, a bill rate), worded for an expense; plus one of its own: the expense
category mapped for the ERP when the `expense-category` mapping set is published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

from sync.pipeline.models.exception_items import Queue
from sync.pipeline.rules import RULES, Facts, Rule, RuleFailure

# Rules that judge the WBS task or the bill rate: an expense is booked to a project only and
# carries its own amount.
NOT_FOR_EXPENSES = frozenset({"TASK_UNKNOWN", "TASK_CLOSED", "RATE_NOT_FOUND"})
_WORDING = {
    "PROJECT_UNKNOWN": "An expense was entered on project {project_ref}, which Ledgerbridge "
    "does not know.",
    "PROJECT_NOT_OPEN": "Project {project_code} is {project_status}: it takes no expenses.",
    "WORKER_IS_PLACEHOLDER": "An expense was entered by role placeholder {worker_ref}: the ERP "
    "needs a named worker.",
    "COST_CENTRE_MISSING": "Worker {worker_number} has no cost centre, so the expense cannot "
    "be costed.",
}
_FIX_WORDING = {
    "PROJECT_NOT_OPEN": "Reopen the project in the ERP, or move the expense to an open project "
    "in the PSA.",
    "WORKER_IS_PLACEHOLDER": "Have a named worker enter the expense in the PSA.",
    "WORKER_NOT_ACTIVE": "Confirm the dates with HR; an expense after termination must be "
    "re-entered or written off.",
    "PERIOD_CLOSED": "Ask the controller to reopen {period_name}, or re-enter the expense in "
    "the current period.",
}
CATEGORY_UNMAPPED = Rule(
    "EXPENSE_CATEGORY_UNMAPPED",
    Queue.MAPPING,
    "Expense category {category} has no ERP expense category in the published mapping.",
    "Add the category to the expense-category mapping, publish it, and replay.",
    "category",
)


def _worded(rule: Rule) -> Rule:
    return replace(
        rule,
        message=_WORDING.get(rule.code, rule.message),
        suggested_fix=_FIX_WORDING.get(rule.code, rule.suggested_fix),
    )


def _expense_rules() -> tuple[tuple[Rule, Callable[[Facts, bool], bool]], ...]:
    rules: list[tuple[Rule, Callable[[Facts, bool], bool]]] = []
    for rule, check in RULES:
        if rule.code in NOT_FOR_EXPENSES:
            continue
        rules.append((_worded(rule), lambda facts, _mapped, check=check: check(facts)))
        if rule.code == "CURRENCY_UNMAPPED":
            rules.append((CATEGORY_UNMAPPED, lambda _facts, mapped: mapped))
    return tuple(rules)


# (rule, passes?) in fixing order: the time rules' order, the category right after currency.
EXPENSE_RULES = _expense_rules()


def expense_rules_check(facts: Facts, *, category: str, category_mapped: bool) -> list[RuleFailure]:
    """Every rule the expense breaks, in fixing order (empty list: it may be posted).

    `facts` as time posting builds them (its task fields unused); `category_mapped`: the PSA
    category has an ERP category, or no expense-category mapping is published (pass-through).
    """
    failures = []
    values: dict | None = None  # built on a failure only
    for rule, passes in EXPENSE_RULES:
        if not passes(facts, category_mapped):
            if values is None:
                values = {name: getattr(facts, name) for name in Facts.__dataclass_fields__}
                values["category"] = category
            failures.append(
                RuleFailure(
                    rule=rule,
                    message=rule.message.format(**values),
                    suggested_fix=rule.suggested_fix.format(**values),
                    cause=str(values.get(rule.cause) or ""),
                )
            )
    return failures


def expense_at_risk(amount: Decimal) -> Decimal:
    """Money at risk of a held-up expense: its amount, to the cent (half-up)."""
    return amount.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
