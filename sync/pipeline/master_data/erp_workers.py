"""ERP employees → links to the HR workers they are.

An employee is matched, after the ERP ref, to the Worker whose employee number is
`externalid` ("E-00001"), else its e-mail. Decision: an ERP employee never creates a Worker.
HR owns the worker master; an employee that HR has not delivered yet is parked
(WORKER_NOT_IN_HR) and linked on replay after the HR sync.
"""

from __future__ import annotations

from typing import Any

from sync.errors import PayloadError
from sync.models import Worker
from sync.pipeline.master_data.engine import Plan, Reader, plans_apply, records_by_ref
from sync.pipeline.master_data.erp_rows import SYSTEM, Row, row_read
from sync.pipeline.master_data.workers import worker_not_in_hr, workers_by_email
from sync.pipeline.models.exception_items import Queue
from sync.pipeline.processing import Batch


def employee_parse(payload: Any) -> Row:
    def read(r: Reader) -> dict[str, Any]:
        return {
            "number": r.text("externalid", required=False, max_length=40),
            "email": (r.text("email", required=False) or "").lower(),
        }

    row = row_read(payload, "employee", read)
    if not row.fields["number"] and not row.fields["email"]:
        raise PayloadError(
            "Neither `externalid` (the employee number) nor `email` is set: "
            "the employee cannot be matched to an HR worker."
        )
    return row


def employee_plan(records: list, batch: Batch) -> None:
    by_ref = records_by_ref(SYSTEM, Worker, [p.external_id for _, p in records])
    by_number = Worker.objects.in_bulk(
        {p.fields["number"] for _, p in records if p.fields["number"]},
        field_name="employee_number",
    )
    by_email = workers_by_email({p.fields["email"] for _, p in records if p.fields["email"]})
    plans = []
    for item, p in records:
        worker = (
            by_ref.get(p.external_id)
            or by_number.get(p.fields["number"])
            or by_email.get(p.fields["email"])
        )
        if worker is None:
            worker_not_in_hr(batch, item, p.external_id, p.fields["number"] or p.fields["email"])
            continue
        plans.append(Plan(item=item, external_id=p.external_id, existing=worker, values={}))
    plans_apply(
        batch, model=Worker, owner_entity="worker", plans=plans, queue=Queue.TIME_AND_EXPENSE
    )
