"""Business rules a time or expense posting must pass before it reaches the ERP. Pure: no DB.

Each rule has a code, a message a finance user understands, the queue that owns the fix and a
suggested fix. The pipeline preloads everything a rule needs for a whole batch into `Facts`
(one set of queries per batch), so checking a million entries is plain Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sync.pipeline.models.exception_items import Queue


@dataclass(frozen=True)
class Rule:
    code: str
    queue: str
    message: str  # str.format()-ed with the facts' fields
    suggested_fix: str
    cause: str  # the facts field naming what to fix, so one cause groups many items


@dataclass(slots=True)
class Facts:
    """What the rules know about one posting, resolved by the pipeline from the batch preload.

    None means "not found" (no such project, no period covering the date, no mapping…). Not
    frozen: a frozen dataclass sets each of these fields through `object.__setattr__`, which
    made building one cost 3 µs of the engine's per-entry budget (0.8 µs now); nothing changes
    a Facts after the pipeline builds it.
    """

    work_date: date
    project_ref: str
    task_ref: str
    worker_ref: str
    project_code: str | None = None
    project_status: str | None = None
    task_code: str | None = None
    task_status: str | None = None
    task_allows_time: bool | None = None
    worker_number: str | None = None
    worker_is_placeholder: bool = False
    worker_status: str | None = None
    worker_cost_centre: str | None = None
    legal_entity: str | None = None
    legal_entity_mapped: bool = True
    currency: str | None = None
    currency_known: bool = True
    currency_mapped: bool = True
    period_name: str | None = None
    period_status: str | None = None
    customer_name: str | None = None
    customer_status: str | None = None
    billable: bool = True
    rate_found: bool = True
    service_item: str | None = None
    service_item_mapped: bool = True


@dataclass(frozen=True)
class RuleFailure:
    rule: Rule
    message: str
    suggested_fix: str
    cause: str


def _rule(code, queue, message, fix, cause, check: Callable[[Facts], bool]):
    return Rule(code, queue, message, fix, cause), check


# (rule, passes?) in the order a person would fix them: structure first, then money.
RULES: tuple[tuple[Rule, Callable[[Facts], bool]], ...] = (
    _rule(
        "PROJECT_UNKNOWN",
        Queue.PROJECT_SETUP,
        "Time was booked to project {project_ref}, which Ledgerbridge does not know.",
        "Provision the project (CRM closed-won → ERP project) or fix the PSA workspace link.",
        "project_ref",
        lambda f: f.project_code is not None,
    ),
    _rule(
        "PROJECT_NOT_OPEN",
        Queue.PROJECT_SETUP,
        "Project {project_code} is {project_status}: it takes no time.",
        "Reopen the project in the ERP, or move the time to an open project in the PSA.",
        "project_code",
        lambda f: f.project_code is None or f.project_status == "open",
    ),
    _rule(
        "TASK_UNKNOWN",
        Queue.PROJECT_SETUP,
        "Task {task_ref} does not exist on project {project_code}.",
        "Add the task to the project's WBS in the ERP, or rebook the time to a valid task.",
        "task_ref",
        lambda f: f.project_code is None or f.task_code is not None,
    ),
    _rule(
        "TASK_CLOSED",
        Queue.PROJECT_SETUP,
        "Task {task_code} on project {project_code} is closed or does not allow time.",
        "Reopen the task (or allow time on it) in the ERP, or rebook to an open task.",
        "task_code",
        lambda f: f.task_code is None or (f.task_status == "open" and bool(f.task_allows_time)),
    ),
    _rule(
        "WORKER_IS_PLACEHOLDER",
        Queue.PROJECT_SETUP,
        "Time was booked by role placeholder {worker_ref}: the ERP needs a named worker.",
        "Staff the assignment with a named worker in the PSA and have them rebook the time.",
        "worker_ref",
        lambda f: not f.worker_is_placeholder,
    ),
    _rule(
        "WORKER_UNKNOWN",
        Queue.TIME_AND_EXPENSE,
        "Worker {worker_ref} is not in the HR worker master.",
        "Check the worker's HR record and PSA user link; the HR feed must carry them.",
        "worker_ref",
        lambda f: f.worker_is_placeholder or f.worker_number is not None,
    ),
    _rule(
        "WORKER_NOT_ACTIVE",
        Queue.TIME_AND_EXPENSE,
        "Worker {worker_number} is {worker_status} in HR.",
        "Confirm the dates with HR; time after termination must be rebooked or written off.",
        "worker_number",
        lambda f: f.worker_number is None or f.worker_status in ("active", "on_leave"),
    ),
    _rule(
        "COST_CENTRE_MISSING",
        Queue.TIME_AND_EXPENSE,
        "Worker {worker_number} has no cost centre, so labour cannot be costed.",
        "Set the worker's cost centre in HR; the next HR sync brings it here.",
        "worker_number",
        lambda f: f.worker_number is None or bool(f.worker_cost_centre),
    ),
    _rule(
        "LEGAL_ENTITY_UNMAPPED",
        Queue.MAPPING,
        "Legal entity {legal_entity} has no ERP subsidiary in the published mapping.",
        "Add the legal entity to the legal-entity mapping, publish it, and replay.",
        "legal_entity",
        lambda f: f.legal_entity_mapped,
    ),
    _rule(
        "CURRENCY_UNKNOWN",
        Queue.TIME_AND_EXPENSE,
        "Currency {currency} is not one Ledgerbridge knows (none of the ERP's currencies).",
        "Correct the currency on the PSA entry, or add the currency in the ERP and let the "
        "next sync bring it here; then replay.",
        "currency",
        lambda f: f.currency_known,
    ),
    _rule(
        "CURRENCY_UNMAPPED",
        Queue.MAPPING,
        "Currency {currency} has no ERP currency in the published mapping.",
        "Add the currency to the currency mapping, publish it, and replay.",
        "currency",
        lambda f: f.currency_mapped,
    ),
    _rule(
        "SERVICE_ITEM_UNMAPPED",
        Queue.MAPPING,
        "Service item {service_item} has no ERP item in the published mapping.",
        "Add the service item to the service-item mapping, publish it, and replay.",
        "service_item",
        lambda f: f.service_item_mapped,
    ),
    _rule(
        "PERIOD_MISSING",
        Queue.TIME_AND_EXPENSE,
        "No ERP accounting period covers {work_date} for {legal_entity}.",
        "Create the accounting period in the ERP for this entity.",
        "legal_entity",
        lambda f: f.period_status is not None,
    ),
    _rule(
        "PERIOD_CLOSED",
        Queue.TIME_AND_EXPENSE,
        "The ERP accounting period {period_name} for {legal_entity} is closed.",
        "Ask the controller to reopen {period_name}, or repost the time in the current period.",
        "period_name",
        lambda f: f.period_status in (None, "open"),
    ),
    _rule(
        "CUSTOMER_NOT_APPROVED",
        Queue.CUSTOMER_MASTER,
        "Customer {customer_name} is {customer_status} in the ERP, not approved.",
        "Finish the customer's approval (tax and credit checks) in the ERP.",
        "customer_name",
        lambda f: f.customer_status in (None, "approved"),
    ),
    _rule(
        "RATE_NOT_FOUND",
        Queue.BILLING,
        "No bill rate on the rate card covers this billable time on {work_date}.",
        "Add or extend the rate card line for the role and date, then replay.",
        "project_code",
        lambda f: not f.billable or f.rate_found,
    ),
)


def rules_check(facts: Facts) -> list[RuleFailure]:
    """Every rule the posting breaks, in fixing order (empty list: it may be posted)."""
    failures = []
    values: dict | None = None  # the facts by name, for the messages: built on a failure only
    for rule, passes in RULES:
        if not passes(facts):
            if values is None:
                values = {name: getattr(facts, name) for name in Facts.__dataclass_fields__}
            failures.append(
                RuleFailure(
                    rule=rule,
                    message=rule.message.format(**values),
                    suggested_fix=rule.suggested_fix.format(**values),
                    cause=str(values.get(rule.cause) or ""),
                )
            )
    return failures


def money_at_risk(*, hours: Decimal, bill_rate: Decimal | None) -> Decimal | None:
    """Billable value held up by a failure: hours times bill rate, to the cent (half-up)."""
    if bill_rate is None:
        return None
    return (hours * bill_rate).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
