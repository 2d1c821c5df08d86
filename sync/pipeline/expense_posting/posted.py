"""Status back on the canonical expense when the ERP confirms its report: approved → posted.

Called by the outbox (sync.pipeline.outbox.outcomes) in the transaction that records the
deliveries as delivered, as it does for time entries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.contrib.contenttypes.models import ContentType

from sync.audit import audited_bulk_create, audited_bulk_update
from sync.integrations.netsuite import expense_reports
from sync.models import Expense, ExternalRef
from sync.models.transactions import ApprovalStatus
from sync.pipeline.models import Delivery

POSTING_ACTOR = "system:outbox"


def expenses_posted_record(*, delivered: Sequence[tuple[Delivery, str]], now: dt.datetime) -> int:
    """Expenses whose expense report the ERP now holds are posted: approved → posted (with
    history, actor `system:outbox`) and an ERP ref to the report's internal id. Only when the
    delivered version is the expense's current one (a newer version is still on its way) and
    the expense is still approved (a void's confirmation changes no status). Idempotent: a
    second call finds nothing approved. Returns how many moved. Three queries, two writes."""
    expense_type = ContentType.objects.get_for_model(Expense).pk
    versions = {
        int(d.object_id): (d.record_version, target_id)
        for d, target_id in delivered
        if target_id
        and d.content_type_id == expense_type
        and (d.payload or {}).get("record_type") == expense_reports.RECORD_TYPE
    }
    if not versions:
        return 0
    expenses = [
        expense
        for expense in Expense.objects.filter(
            pk__any=list(versions), status=ApprovalStatus.APPROVED
        )
        if expense.version == versions[expense.pk][0]
    ]
    if not expenses:
        return 0
    for expense in expenses:
        expense.status = ApprovalStatus.POSTED
    audited_bulk_update(model=Expense, objs=expenses, fields=["status"], actor=POSTING_ACTOR)
    linked = set(
        ExternalRef.objects.filter(
            system=ExternalRef.System.ERP,
            content_type_id=expense_type,
            object_id__any=[str(e.pk) for e in expenses],
        ).values_list("object_id", flat=True)
    )
    audited_bulk_create(
        model=ExternalRef,
        actor=POSTING_ACTOR,
        objs=[
            ExternalRef(
                system=ExternalRef.System.ERP,
                content_type_id=expense_type,
                object_id=str(e.pk),
                external_id=versions[e.pk][1],
                last_synced_at=now,
            )
            for e in expenses
            if str(e.pk) not in linked
        ],
    )
    return len(expenses)
