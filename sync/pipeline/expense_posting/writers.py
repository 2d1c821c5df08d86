"""Writing a batch's new and changed expenses with history, and their ERP expense reports.

`expenses_create` / `expenses_update` are the interface. Bulk only: new expenses and their
deliveries by COPY on PostgreSQL (sync.audit.audited_copy_create, sync.pgcopy.copy_insert) and
by `audited_bulk_create` and `deliveries_enqueue` elsewhere, the same rows either way; changes
by one `audited_bulk_update` and `deliveries_enqueue` (existing keys skipped).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sync.audit import audited_bulk_create, audited_bulk_update, audited_copy_create
from sync.integrations.kantata.expenses import ParsedExpense
from sync.integrations.netsuite import expense_reports
from sync.integrations.netsuite.time_bills import record_ref
from sync.models import Expense, ExternalRef
from sync.models.transactions import ApprovalStatus
from sync.pgcopy import copy_insert, copy_supported
from sync.pipeline.expense_posting.references import Preload, Resolved
from sync.pipeline.expense_posting.rules import expense_at_risk
from sync.pipeline.models import Connection, Delivery, SyncRun
from sync.pipeline.outbox.claims import deliveries_enqueue
from sync.pipeline.processing import Item

ERP_SYSTEM = "erp"
OPERATION = "erp.expense_report.upsert"
# Fields the PSA sends that Ledgerbridge keeps on the canonical expense (ownership-checked).
OWNED_FIELDS = ("incurred_date", "amount", "billable", "currency", "psa_category")
# The canonical grouping of a PSA category name, by its lower-cased name; anything else is
# "other". A firm's PSA names its own categories: this only groups them for reports.
_CANONICAL_CATEGORY = {
    "travel": Expense.Category.TRAVEL,
    "train": Expense.Category.TRAVEL,
    "flight": Expense.Category.TRAVEL,
    "mileage": Expense.Category.TRAVEL,
    "taxi": Expense.Category.TRAVEL,
    "hotel": Expense.Category.LODGING,
    "lodging": Expense.Category.LODGING,
    "meals": Expense.Category.MEALS,
    "subcontract": Expense.Category.SUBCONTRACT,
}
# Columns of a new canonical expense, in the order `_expense_row` gives them.
_EXPENSE_COLUMNS = (
    "psa_id",
    "worker_id",
    "project_id",
    "incurred_date",
    "amount",
    "currency_id",
    "category",
    "psa_category",
    "billable",
    "mapping_versions",
    "correlation_id",
)

# Columns of a new expense's delivery that differ per row (the rest are COPY constants).
_DELIVERY_COLUMNS = ("object_id", "idempotency_key", "external_id", "payload", "correlation_id")

NewExpense = tuple[Item, ParsedExpense, Resolved]


def canonical_category(psa_category: str) -> str:
    return _CANONICAL_CATEGORY.get(psa_category.strip().lower(), Expense.Category.OTHER)


def expenses_create(
    to_create: list[NewExpense],
    *,
    run: SyncRun,
    erp: Connection,
    now: dt.datetime,
    pre: Preload,
    already_posted: bool = False,
) -> int:
    """Create the expenses with history (actor = the run) and one pending delivery each, or,
    `already_posted`, as posted with their ERP ref and no delivery. Returns how many deliveries
    are new. A concurrent creator of the same expense hits the PSA id's unique constraint,
    which rolls the whole batch back."""
    status = ApprovalStatus.POSTED if already_posted else ApprovalStatus.APPROVED
    rows = [_expense_row(item, p, r) for item, p, r in to_create]
    if copy_supported(Expense):
        pks = audited_copy_create(
            model=Expense,
            columns=_EXPENSE_COLUMNS,
            constants={"status": status, "approved_at": now},
            rows=rows,
            actor=run.actor,
        )
    else:
        created = audited_bulk_create(
            model=Expense,
            objs=[
                Expense(
                    **dict(zip(_EXPENSE_COLUMNS, row, strict=True)),
                    status=status,
                    approved_at=now,
                )
                for row in rows
            ],
            actor=run.actor,
        )
        pks = [e.pk for e in created]
    expense_type = ContentType.objects.get_for_model(Expense)
    if already_posted:
        audited_bulk_create(
            model=ExternalRef,
            actor=run.actor,
            objs=[
                ExternalRef(
                    system=ERP_SYSTEM,
                    content_type=expense_type,
                    object_id=str(pk),
                    external_id=pre.posted[p.external_id],
                    last_synced_at=now,
                )
                for pk, (_, p, _) in zip(pks, to_create, strict=True)
            ],
        )
        return 0
    deliveries = [
        _delivery(
            pk=pk,
            version=1,
            row=dict(zip(_EXPENSE_COLUMNS, row, strict=True)),
            resolved=resolved,
            erp=erp,
            now=now,
            pre=pre,
            expense_type=expense_type,
        )
        for pk, row, (_, _, resolved) in zip(pks, rows, to_create, strict=True)
    ]
    if not copy_supported(Expense):
        return deliveries_enqueue(deliveries=deliveries)
    # New primary keys cannot collide with an existing idempotency key: no conflict to skip,
    # so one COPY (the ORM's multi-row INSERT of the JSON payloads cost 3/4 of the batch).
    copy_insert(
        model=Delivery,
        columns=_DELIVERY_COLUMNS,
        rows=[tuple(getattr(d, name) for name in _DELIVERY_COLUMNS) for d in deliveries],
        omit=["id"],
        constants={
            "operation": OPERATION,
            "record_version": 1,
            "connection_id": erp.pk,
            "content_type_id": expense_type.pk,
            "next_attempt_at": now,
            "created_at": timezone.now(),
        },
    )
    return len(deliveries)


def expenses_update(
    to_update: list[tuple[Item, ParsedExpense, Expense, Resolved]],
    *,
    run: SyncRun,
    erp: Connection,
    now: dt.datetime,
    pre: Preload,
) -> int:
    """Write the changed expenses (one bulk update with history: a new version each) and a
    delivery for each new version: the report upserted again, or voided (approvalStatus
    Rejected) for an expense whose status is now rejected or reversed. Returns how many
    deliveries are new."""
    audited_bulk_update(
        model=Expense,
        objs=[e for _, _, e, _ in to_update],
        fields=[*OWNED_FIELDS, "status", "mapping_versions"],
        actor=run.actor,
    )
    expense_type = ContentType.objects.get_for_model(Expense)
    return deliveries_enqueue(
        deliveries=[
            _delivery(
                pk=expense.pk,
                version=expense.version,
                row={name: getattr(expense, name) for name in _EXPENSE_COLUMNS},
                resolved=resolved,
                erp=erp,
                now=now,
                pre=pre,
                expense_type=expense_type,
                rejected=expense.status in (ApprovalStatus.REJECTED, ApprovalStatus.REVERSED),
            )
            for _, _, expense, resolved in to_update
        ]
    )


def _expense_row(item: Item, p: ParsedExpense, resolved: Resolved) -> tuple:
    return (
        p.external_id,
        resolved.worker.pk,
        resolved.project.pk,
        p.incurred_date,
        p.amount,
        p.currency,
        canonical_category(p.category),
        p.category,
        p.billable,
        resolved.versions,
        resolved.project.correlation_id or item.correlation_id,
    )


def _delivery(
    *,
    pk: int,
    version: int,
    row: dict[str, Any],
    resolved: Resolved,
    erp: Connection,
    now: dt.datetime,
    pre: Preload,
    expense_type: ContentType,
    rejected: bool = False,
) -> Delivery:
    """The ERP expense report (NetSuite expenseReport) for one canonical expense version."""
    worker, project, erp_refs = resolved.worker, resolved.project, pre.erp_refs
    body = expense_reports.expense_report_body(
        psa_id=row["psa_id"],
        incurred_date=row["incurred_date"],
        amount=row["amount"],
        billable=row["billable"],
        category=resolved.erp_category or row["psa_category"],
        subsidiary=resolved.subsidiary,
        currency=resolved.erp_currency,
        employee=record_ref(
            internal_id=erp_refs.get(("worker", str(worker.pk))),
            external_id=worker.employee_number,
        ),
        customer=record_ref(
            internal_id=erp_refs.get(("project", str(project.pk))), external_id=project.code
        ),
        department=erp_refs.get(("costcentre", str(worker.cost_centre_id))),
        rejected=rejected,
    )
    return Delivery(
        connection=erp,
        content_type=expense_type,
        object_id=str(pk),
        operation=OPERATION,
        record_version=version,
        idempotency_key=f"erp:{OPERATION}:{pk}:v{version}",
        external_id=body["externalId"],
        # What to send (`record_type`, `body`) and what finance needs if it fails (at risk).
        payload={
            "record_type": expense_reports.RECORD_TYPE,
            "body": body,
            "amount": str(expense_at_risk(row["amount"])),
            "currency": row["currency_id"],
            "mapping_versions": resolved.versions,
        },
        next_attempt_at=now,
        correlation_id=row["correlation_id"] or "",
    )
