"""Pair "expenses": PSA approved expenses (canonical Expense rows, as the PSA sent them) against
the ERP's expense reports read through SuiteQL.

Matched on the ERP external id `KT-EX-<PSA id>` (one report per expense); a report without it
was keyed in by hand and is attributed to the expense of the same employee, date, amount and
currency (a duplicate of it), else reported as the ERP's own (missing in source) when live.
Compared: the amount in the currency's minor units, the currency, and status (live: approved,
posted, invoiced; void: rejected or reversed here, approvalStatus Rejected in the ERP, decision 91).
The ERP's report carries no project on its header (SuiteQL reads no sublists), so a run scoped
to a legal entity or project places a report by the expense its key names.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.contenttypes.models import ContentType

from reconciliation.pairs.base import Explaining, Pair, Row, Scope, batched, minor_units
from sync.integrations.netsuite import expense_reports, reconcile_reads
from sync.models import Currency, Expense, ExternalRef, Worker
from sync.models.transactions import ApprovalStatus
from sync.pipeline.models.exception_items import Queue

NAME = "expenses"
LIVE = "live"
VOID = "void"
LIVE_STATUSES = frozenset({ApprovalStatus.APPROVED, ApprovalStatus.POSTED, ApprovalStatus.INVOICED})
# Expenses not yet approved (draft, submitted) are nothing the ERP should hold: not staged.
STAGED_STATUSES = LIVE_STATUSES | {ApprovalStatus.REJECTED, ApprovalStatus.REVERSED}
# The expense flow's record keys (sync/pipeline/expense_posting/flow.py: psa, expense).
SOURCE_RECORD_PREFIX = "psa:expense:"
CHUNK = 5000


def _digits() -> dict[str, int]:
    return dict(Currency.objects.values_list("code", "minor_units"))


def _employees() -> dict[int, str]:
    """{worker pk: its ERP employee's internal id}."""
    return {
        int(pk): employee
        for pk, employee in ExternalRef.objects.filter(
            system="erp", content_type=ContentType.objects.get_for_model(Worker)
        ).values_list("object_id", "external_id")
    }


def _match(employee: str | None, day: str, amount: int | None, currency: str) -> str:
    return f"{employee or ''}|{day}|{'' if amount is None else amount}|{currency}"


def _expenses(scope: Scope):
    expenses = Expense.objects.filter(status__in=STAGED_STATUSES, psa_id__isnull=False)
    date_from, date_to = scope.dates
    if date_from is not None:
        expenses = expenses.filter(incurred_date__range=(date_from, date_to))
    if scope.project_id is not None:
        expenses = expenses.filter(project_id=scope.project_id)
    if scope.legal_entity_id is not None:
        expenses = expenses.filter(project__legal_entity_id=scope.legal_entity_id)
    return expenses


def source_rows(scope: Scope) -> Iterator[list[Row]]:
    """The approved (and since rejected or reversed) PSA expenses in scope."""
    digits = _digits()
    employees = _employees()
    columns = (
        "pk",
        "psa_id",
        "worker_id",
        "project_id",
        "project__legal_entity_id",
        "incurred_date",
        "amount",
        "currency_id",
        "status",
        "approved_at",
    )

    def rows() -> Iterator[Row]:
        for pk, psa_id, worker, project, entity, day, amount, currency, status, approved in (
            _expenses(scope).values_list(*columns).order_by().iterator(chunk_size=CHUNK)
        ):
            live = status in LIVE_STATUSES
            minor = minor_units(amount, digits=digits.get(currency, 2))
            yield Row(
                key=expense_reports.expense_report_key(psa_id),
                match=_match(employees.get(worker), day.isoformat(), minor, currency),
                external_id=psa_id,
                required=live,
                status=LIVE if live else VOID,
                quantity=None,
                amount=minor,
                currency=currency,
                period=day.isoformat()[:7],
                legal_entity_id=entity,
                project_id=project,
                record_id=pk,
                approved_at=approved,
            )

    yield from batched(rows(), CHUNK)


def _decimal(value: Any) -> Decimal | None:
    try:
        return None if value in (None, "") else Decimal(str(value))
    except InvalidOperation:
        return None


def target_rows(scope: Scope, connector: Any) -> Iterator[list[Row]]:
    """The ERP's expense reports in the scope's period, page by page."""
    digits = _digits()
    symbols = reconcile_reads.currencies(connector)
    placed = scope.legal_entity_id is not None or scope.project_id is not None
    # {PSA id: (project, legal entity)}: where a keyed report belongs, for a scoped run.
    where = (
        {
            psa_id: (project, entity)
            for psa_id, project, entity in Expense.objects.filter(psa_id__isnull=False)
            .values_list("psa_id", "project_id", "project__legal_entity_id")
            .iterator(chunk_size=CHUNK)
        }
        if placed
        else {}
    )
    date_from, date_to = scope.dates
    for page in reconcile_reads.expense_reports_pages(
        connector, date_from=date_from, date_to=date_to
    ):
        rows = []
        for report in page:
            external = str(report.get("externalid") or "")
            keyed = external.startswith(expense_reports.KEY_PREFIX)
            psa_id = external.removeprefix(expense_reports.KEY_PREFIX)
            project, entity = where.get(psa_id, (None, None))
            if placed and not scope.keeps(legal_entity_id=entity, project_id=project):
                continue
            currency = symbols.get(str(report.get("currency") or ""), "")
            total = _decimal(report.get("total"))
            amount = None if total is None else minor_units(total, digits=digits.get(currency, 2))
            day = str(report.get("trandate") or "")
            live = str(report.get("approvalstatus") or "") != expense_reports.REJECTED
            rows.append(
                Row(
                    key=external if keyed else None,
                    match=_match(str(report.get("entity") or ""), day, amount, currency),
                    external_id=str(report["id"]),
                    required=live,
                    status=LIVE if live else VOID,
                    quantity=None,
                    amount=amount,
                    currency=currency,
                    period=day[:7],
                    legal_entity_id=entity,
                    project_id=project,
                    record_id=None,
                    approved_at=None,
                )
            )
        yield rows


def explaining(breaks: list[tuple[str, list[str]]]) -> list[Explaining]:
    return [
        Explaining(
            record_keys=([f"{SOURCE_RECORD_PREFIX}{source}"] if source else [])
            + [f"erp:{expense_reports.RECORD_TYPE}:{t}" for t in targets],
        )
        for source, targets in breaks
    ]


PAIR = Pair(
    name=NAME,
    label="PSA approved expenses ↔ ERP expense reports",
    source_rows=source_rows,
    target_rows=target_rows,
    target_system="erp",
    queue=Queue.TIME_AND_EXPENSE,
    explaining=explaining,
    money=True,
    delivery_model=Expense,
    attribute=True,
    fixes={
        "missing_in_target": "The ERP has no expense report for this approved expense (deleted, "
        "or never posted). Retry the expense's delivery from this item: it upserts the report "
        "under its external id, so it cannot post twice.",
        "missing_in_source": "The ERP holds a live expense report that no approved PSA expense "
        "accounts for (keyed in by hand, or its expense is unknown here). Reject the report in "
        "the ERP, or approve the expense in the PSA.",
        "duplicate": "The ERP holds more than one expense report for this expense. Reject the "
        "reports that do not carry the expense's external id in the ERP.",
        "amount_mismatch": "The ERP report's amount or currency differs from the approved "
        "expense. Retry the delivery to restore the approved amount, or correct the report.",
        "status_mismatch": "The expense is rejected or reversed here but its report is live in "
        "the ERP, or the other way round. Reject the report in the ERP, or re-approve the "
        "expense in the PSA.",
    },
)
