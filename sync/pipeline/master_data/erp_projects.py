"""ERP customers, jobs → projects and projectTasks → WBS tasks.

Matching keys, after the ERP ref: job → Project by code = `externalid` (else `entityid`), the
project key "P-000001" that the PSA workspace carries as `external_reference`; projectTask →
Task by (project, `externalid`), the WBS key "P-000001.2.1" that the PSA story carries as
`external_reference`.
"""

from __future__ import annotations

from typing import Any

from sync.models import Currency, Customer, LegalEntity, Project, Task
from sync.pipeline.master_data.engine import (
    Plan,
    Reader,
    levels_apply,
    missing_reference,
    plans_apply,
    records_by_ref,
    refs_load,
)
from sync.pipeline.master_data.erp_rows import SYSTEM, Row, row_read, subsidiaries_load
from sync.pipeline.models.exception_items import Queue
from sync.pipeline.processing import Batch

# NetSuite job entityStatus → project status. Awarded (5) is provisioned and takes time.
JOB_STATUS = {"1": "closed", "2": "open", "3": "closed", "4": "provisioning", "5": "open"}
TASK_STATUS = {"NOTSTART": "open", "PROGRESS": "open", "COMPLETE": "closed"}


# --- customer -------------------------------------------------------------------------------------


def customer_parse(payload: Any) -> Row:
    def read(r: Reader) -> dict[str, Any]:
        return {
            "name": r.text("companyname", max_length=200),
            "subsidiary": r.text("subsidiary"),
            "tax_id": r.text("vatregnumber", required=False, max_length=50) or "",
            "inactive": r.flag("isinactive"),
        }

    return row_read(payload, "customer", read)


def customer_plan(records: list, batch: Batch) -> None:
    entities = subsidiaries_load(records)
    by_ref = records_by_ref(SYSTEM, Customer, [p.external_id for _, p in records])
    plans = []
    for item, p in records:
        entity = entities.get(p.fields["subsidiary"])
        if entity is None:
            missing_reference(
                batch,
                item,
                p.external_id,
                what="subsidiary",
                ref=p.fields["subsidiary"],
                queue=Queue.CUSTOMER_MASTER,
            )
            continue
        # A customer in the ERP has passed the ERP's approval; inactive ones are switched off.
        status = Customer.Status.INACTIVE if p.fields["inactive"] else Customer.Status.APPROVED
        plans.append(
            Plan(
                item=item,
                external_id=p.external_id,
                existing=by_ref.get(p.external_id),
                values={
                    "name": p.fields["name"],
                    "legal_entity": entity,
                    "tax_id": p.fields["tax_id"],
                    "status": status,
                },
            )
        )
    plans_apply(
        batch, model=Customer, owner_entity="customer", plans=plans, queue=Queue.CUSTOMER_MASTER
    )


# --- job → project, projectTask → task ---------------------------------------------------------


def job_parse(payload: Any) -> Row:
    def read(r: Reader) -> dict[str, Any]:
        code = r.text("externalid", required=False, max_length=40) or r.text(
            "entityid", required=False, max_length=40
        )
        if code is None:
            r.errors.append("Neither `externalid` nor `entityid` names the project.")
        return {
            "code": code,
            "name": r.text("companyname", max_length=200),
            "customer": r.text("parent"),
            "subsidiary": r.text("subsidiary", required=False),
            "currency": r.text("currency", required=False),
            "status": r.choice("entitystatus", JOB_STATUS),
            "inactive": r.flag("isinactive"),
        }

    return row_read(payload, "job", read)


def job_plan(records: list, batch: Batch) -> None:
    customers = records_by_ref(SYSTEM, Customer, [p.fields["customer"] for _, p in records])
    entities = records_by_ref(SYSTEM, LegalEntity, [p.fields["subsidiary"] for _, p in records])
    currencies = refs_load(SYSTEM, Currency, [p.fields["currency"] for _, p in records])
    by_ref = records_by_ref(SYSTEM, Project, [p.external_id for _, p in records])
    by_code = Project.objects.in_bulk({p.fields["code"] for _, p in records}, field_name="code")
    plans = []
    for item, p in records:
        customer = customers.get(p.fields["customer"])
        if customer is None:
            missing_reference(
                batch,
                item,
                p.external_id,
                what="customer",
                ref=p.fields["customer"],
                queue=Queue.CUSTOMER_MASTER,
                code="CUSTOMER_UNKNOWN",
            )
            continue
        # NetSuite sources a project's subsidiary and currency from its customer.
        entity = entities.get(p.fields["subsidiary"]) if p.fields["subsidiary"] else None
        entity_id = entity.pk if entity else customer.legal_entity_id
        currency = currencies.get(p.fields["currency"]) if p.fields["currency"] else None
        if currency is None and p.fields["currency"]:
            missing_reference(
                batch,
                item,
                p.external_id,
                what="currency",
                ref=p.fields["currency"],
                queue=Queue.PROJECT_SETUP,
                legal_entity=entity.code if entity else "",
            )
            continue
        if currency is None:
            currency = (entity or customer.legal_entity).functional_currency_id
        status = "closed" if p.fields["inactive"] else JOB_STATUS.get(p.fields["status"], "open")
        plans.append(
            Plan(
                item=item,
                external_id=p.external_id,
                existing=by_ref.get(p.external_id) or by_code.get(p.fields["code"]),
                values={
                    "name": p.fields["name"],
                    "customer": customer.pk,
                    "legal_entity": entity_id,
                    "currency": currency,
                    "status": status,
                },
                fixed={"code": p.fields["code"]},
                natural_key=p.fields["code"],
            )
        )
    plans_apply(
        batch, model=Project, owner_entity="project", plans=plans, queue=Queue.PROJECT_SETUP
    )


def task_parse(payload: Any) -> Row:
    def read(r: Reader) -> dict[str, Any]:
        return {
            "code": r.text("externalid", required=False, max_length=40),
            "name": r.text("title", max_length=200),
            "project": r.text("company"),
            "parent": r.text("parent", required=False),
            "status": r.choice("status", TASK_STATUS),
        }

    row = row_read(payload, "projectTask", read)
    row.fields["code"] = row.fields["code"] or f"NS-TASK-{row.external_id}"[:40]
    return row


def task_plan(records: list, batch: Batch) -> None:
    projects = refs_load(SYSTEM, Project, [p.fields["project"] for _, p in records])
    by_ref = records_by_ref(SYSTEM, Task, [p.external_id for _, p in records])
    by_key = {
        (t.project_id, t.code): t
        for t in Task.objects.filter(
            project_id__in=set(projects.values()), code__in={p.fields["code"] for _, p in records}
        )
    }
    parents = refs_load(SYSTEM, Task, [p.fields["parent"] for _, p in records])
    plans = []
    for item, p in records:
        project = projects.get(p.fields["project"])
        if project is None:
            missing_reference(
                batch,
                item,
                p.external_id,
                what="job",
                ref=p.fields["project"],
                queue=Queue.PROJECT_SETUP,
                code="PROJECT_UNKNOWN",
            )
            continue
        key = (project, p.fields["code"])
        status = TASK_STATUS.get(p.fields["status"] or "", "open")
        plans.append(
            (
                Plan(
                    item=item,
                    external_id=p.external_id,
                    existing=by_ref.get(p.external_id) or by_key.get(key),
                    values={"name": p.fields["name"], "status": status},
                    fixed={"project": project, "code": p.fields["code"]},
                    natural_key=key,
                ),
                p.fields["parent"],
            )
        )

    def apply(ready: list[Plan]) -> dict[str, Any]:
        return plans_apply(
            batch, model=Task, owner_entity="task", plans=ready, queue=Queue.PROJECT_SETUP
        )

    levels_apply(batch, plans=plans, parent_field="parent", known=parents, apply=apply)
