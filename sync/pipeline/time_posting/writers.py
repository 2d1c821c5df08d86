"""Writing a batch's new and changed time entries with history, and their ERP postings.

One interface, `time_entries_create` / `time_entries_update`; behind the create, two
implementations that write the same rows: COPY on PostgreSQL (`_create_by_copy`, no model
instance per row) and the ORM elsewhere (`_create_by_orm`). A test compares them column for
column.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sync.audit import audited_bulk_create, audited_bulk_update, audited_copy_create
from sync.integrations.kantata.time_entries import ParsedTime
from sync.integrations.netsuite import time_bills
from sync.models import ExternalRef, TimeEntry
from sync.models.transactions import ApprovalStatus
from sync.pgcopy import copy_insert, copy_supported
from sync.pipeline.models import Connection, Delivery, SyncRun
from sync.pipeline.outbox.claims import deliveries_enqueue
from sync.pipeline.processing import Item
from sync.pipeline.rules import money_at_risk
from sync.pipeline.time_posting.references import Preload, Resolved

ERP_SYSTEM = "erp"
OPERATION = "erp.time_bill.upsert"
# Fields the PSA sends that Ledgerbridge keeps on the canonical time entry.
OWNED_FIELDS = ("work_date", "hours", "billable", "bill_rate", "currency")

# Columns of a new canonical time entry, in the order `_entry_row` gives them.
_ENTRY_COLUMNS = (
    "psa_id",
    "worker_id",
    "project_id",
    "task_id",
    "work_date",
    "hours",
    "billable",
    "bill_rate",
    "currency_id",
    "mapping_versions",
    "correlation_id",
)
# Columns of a new entry's delivery, in the order `_create_by_copy` gives them.
_DELIVERY_COLUMNS = ("object_id", "idempotency_key", "external_id", "payload", "correlation_id")

NewEntry = tuple[Item, ParsedTime, Resolved]


def time_entries_create(
    to_create: list[NewEntry],
    *,
    run: SyncRun,
    erp: Connection,
    now: dt.datetime,
    pre: Preload,
    already_posted: bool = False,
) -> int:
    """Create the entries with history (actor = the run) and one pending delivery each, or,
    `already_posted`, as posted with their ERP ref and no delivery. By COPY on PostgreSQL,
    through the ORM elsewhere: the same rows either way. Returns how many deliveries are new.

    A concurrent creator of the same entry hits the PSA id's unique constraint, which rolls the
    whole batch back.
    """
    create = _create_by_copy if copy_supported(TimeEntry) else _create_by_orm
    return create(to_create, run=run, erp=erp, now=now, pre=pre, already_posted=already_posted)


def time_entries_update(
    to_update: list[tuple[Item, ParsedTime, TimeEntry, Resolved]],
    *,
    run: SyncRun,
    erp: Connection,
    now: dt.datetime,
    pre: Preload,
) -> int:
    """Write the changed entries (one bulk update with history) and a delivery for each new
    version. Returns how many deliveries are new."""
    audited_bulk_update(
        model=TimeEntry,
        objs=[e for _, _, e, _ in to_update],
        fields=[*OWNED_FIELDS, "mapping_versions"],
        actor=run.actor,
    )
    return deliveries_enqueue(
        deliveries=[
            _delivery(entry, resolved, p, item, erp=erp, now=now, pre=pre)
            for item, p, entry, resolved in to_update
        ]
    )


def _entry_row(item: Item, p: ParsedTime, resolved: Resolved) -> tuple:
    return (
        p.external_id,
        resolved.worker.pk,
        resolved.project.pk,
        resolved.task.pk,
        p.work_date,
        p.hours,
        p.billable,
        p.rate,
        p.currency,
        resolved.versions,
        resolved.project.correlation_id or item.correlation_id,
    )


def _entry_constants(now: dt.datetime, *, already_posted: bool) -> dict[str, Any]:
    status = ApprovalStatus.POSTED if already_posted else ApprovalStatus.APPROVED
    return {"status": status, "approved_at": now}


def _create_by_orm(
    to_create: list[NewEntry],
    *,
    run: SyncRun,
    erp: Connection,
    now: dt.datetime,
    pre: Preload,
    already_posted: bool = False,
) -> int:
    """New entries through the ORM (databases without COPY): entries with history, then their
    deliveries, or, `already_posted`, their ERP refs (no delivery)."""
    constants = _entry_constants(now, already_posted=already_posted)
    entries = [
        TimeEntry(**dict(zip(_ENTRY_COLUMNS, _entry_row(item, p, r), strict=True)), **constants)
        for item, p, r in to_create
    ]
    created = audited_bulk_create(model=TimeEntry, objs=entries, actor=run.actor)
    if already_posted:
        entry_type = ContentType.objects.get_for_model(TimeEntry)
        audited_bulk_create(
            model=ExternalRef,
            actor=run.actor,
            objs=[
                ExternalRef(
                    system=ERP_SYSTEM,
                    content_type=entry_type,
                    object_id=str(e.pk),
                    external_id=pre.posted[p.external_id],
                    last_synced_at=now,
                )
                for (_, p, _), e in zip(to_create, created, strict=True)
            ],
        )
        return 0
    return deliveries_enqueue(
        deliveries=[
            _delivery(entry, resolved, p, item, erp=erp, now=now, pre=pre)
            for (item, p, resolved), entry in zip(to_create, created, strict=True)
        ]
    )


def _create_by_copy(
    to_create: list[NewEntry],
    *,
    run: SyncRun,
    erp: Connection,
    now: dt.datetime,
    pre: Preload,
    already_posted: bool = False,
) -> int:
    """New entries on PostgreSQL: the rows `_create_by_orm` writes (entry + "+" history row
    attributed to the run, one pending delivery each, or the ERP ref + its history row), by
    COPY and without a model instance per row (sync.audit.audited_copy_create). New primary
    keys cannot collide with an existing idempotency key."""
    entry_ids = audited_copy_create(
        model=TimeEntry,
        columns=_ENTRY_COLUMNS,
        constants=_entry_constants(now, already_posted=already_posted),
        rows=[_entry_row(item, p, r) for item, p, r in to_create],
        actor=run.actor,
    )
    entry_type = ContentType.objects.get_for_model(TimeEntry).pk
    if already_posted:
        audited_copy_create(
            model=ExternalRef,
            columns=("object_id", "external_id"),
            constants={"system": ERP_SYSTEM, "content_type_id": entry_type, "last_synced_at": now},
            rows=[
                (str(pk), pre.posted[p.external_id])
                for pk, (_, p, _) in zip(entry_ids, to_create, strict=True)
            ],
            actor=run.actor,
        )
        return 0
    rows = []
    for pk, (item, p, resolved) in zip(entry_ids, to_create, strict=True):
        fields = _delivery_fields(
            pk=pk,
            version=1,
            work_date=p.work_date,
            hours=p.hours,
            billable=p.billable,
            bill_rate=p.rate,
            currency=p.currency,
            correlation_id=resolved.project.correlation_id or item.correlation_id,
            resolved=resolved,
            p=p,
            pre=pre,
        )
        rows.append(tuple(fields[name] for name in _DELIVERY_COLUMNS))
    copy_insert(
        model=Delivery,
        columns=_DELIVERY_COLUMNS,
        rows=rows,
        omit=["id"],
        constants={
            "operation": OPERATION,
            "record_version": 1,
            "connection_id": erp.pk,
            "content_type_id": entry_type,
            "next_attempt_at": now,
            "created_at": timezone.now(),
        },
    )
    return len(rows)


def _delivery(
    entry: TimeEntry,
    resolved: Resolved,
    p: ParsedTime,
    item: Item,
    *,
    erp: Connection,
    now: dt.datetime,
    pre: Preload,
) -> Delivery:
    """The ERP labour posting (NetSuite timeBill) for one canonical time entry version."""
    fields = _delivery_fields(
        pk=entry.pk,
        version=entry.version,
        work_date=entry.work_date,
        hours=entry.hours,
        billable=entry.billable,
        bill_rate=entry.bill_rate,
        currency=entry.currency_id,
        correlation_id=entry.correlation_id or item.correlation_id,
        resolved=resolved,
        p=p,
        pre=pre,
    )
    return Delivery(
        connection=erp,
        content_type=ContentType.objects.get_for_model(TimeEntry),
        operation=OPERATION,
        record_version=entry.version,
        next_attempt_at=now,
        **fields,
    )


def _delivery_fields(
    *,
    pk: int,
    version: int,
    work_date: dt.date,
    hours: Decimal,
    billable: bool,
    bill_rate: Decimal,
    currency: str,
    correlation_id: str,
    resolved: Resolved,
    p: ParsedTime,
    pre: Preload,
) -> dict[str, Any]:
    """The fields of a delivery that differ between entry versions."""
    worker, project, task = resolved.worker, resolved.project, resolved.task
    erp_refs = pre.erp_refs
    body = time_bills.time_bill_body(
        psa_id=p.external_id,
        work_date=work_date,
        hours=hours,
        billable=billable,
        bill_rate=bill_rate,
        subsidiary=resolved.subsidiary,
        employee=time_bills.record_ref(
            internal_id=erp_refs.get(("worker", str(worker.pk))),
            external_id=worker.employee_number,
        ),
        customer=time_bills.record_ref(
            internal_id=erp_refs.get(("project", str(project.pk))), external_id=project.code
        ),
        task=time_bills.record_ref(
            internal_id=erp_refs.get(("task", str(task.pk))), external_id=task.code
        ),
        department=erp_refs.get(("costcentre", str(worker.cost_centre_id))),
    )
    # What to send (`record_type`, `body`) and what finance needs if it fails (amount at risk).
    payload = {
        "record_type": time_bills.RECORD_TYPE,
        "body": body,
        "amount": str(money_at_risk(hours=hours, bill_rate=bill_rate)),
        "currency": currency,
        "mapping_versions": resolved.versions,
    }
    return {
        "object_id": str(pk),
        "idempotency_key": f"erp:{OPERATION}:{pk}:v{version}",
        "external_id": body["externalId"],
        "payload": payload,
        "correlation_id": correlation_id,
    }
