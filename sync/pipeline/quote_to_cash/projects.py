"""Project provisioning (flow 2), first half: a CRM contract (SOW) activated for a won deal →
canonical contract → a project shell with its WBS, waiting in `draft` for its customer.

The CRM contract flow (`contract_flow`, processing protocol): a contract not activated is
left alone. An activated one needs its deal onboarded (a canonical won opportunity); until
then it parks as CUSTOMER_UNKNOWN (re-offered each cycle). It is written with `plans_apply`,
then its project: code `project_code(contract)` (the SOW number's digits, decision 82); a
project with that code already (provisioned before Ledgerbridge) is linked to the contract,
never duplicated; otherwise the project is created in `draft` with the WBS of the published
`project-template` mapping for the contract's billing model (`PROJECT_TEMPLATE_UNMAPPED` when
none). Nothing goes to a target here: `advance.py` provisions a draft project in the ERP and
the PSA once the ERP has accepted its customer, so a project never becomes an orphan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sync.audit import audited_bulk_create, audited_bulk_update
from sync.integrations.salesforce import deals as sf
from sync.mappings.selectors import mapping_tables_load
from sync.models import Contract, Currency, Opportunity, Project, Task
from sync.pipeline.master_data.engine import Plan, plans_apply, records_by_ref
from sync.pipeline.models.exception_items import Queue, Stage
from sync.pipeline.processing import Batch, Flow, Item

CRM = "crm"
CONTRACT = "Contract"
PROJECT_TEMPLATE_SET = "project-template"
BILLING_MODELS = {
    "Time and Materials": Contract.BillingModel.TIME_AND_MATERIALS,
    "Fixed Fee": Contract.BillingModel.FIXED_FEE_MILESTONES,
    "Usage": Contract.BillingModel.USAGE,
}


def project_code(contract: sf.Contract) -> str:
    """The project code of a contract: `P-` and the SOW number's digits (SOW-000042 →
    P-000042, the firm's numbering), else `P-C<contract number>`, else `P-<contract Id>`."""
    digits = "".join(re.findall(r"[0-9]+", contract.sow_number))
    if digits:
        return f"P-{digits}"[:40]
    return (f"P-C{contract.number}" if contract.number else f"P-{contract.external_id}")[:40]


def template_tasks(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The WBS a project-template entry describes: `{"tasks": [{"code", "name", "parent",
    "allows_time"}]}`, parents before children. Raises ValueError for a malformed template."""
    tasks = attributes.get("tasks")
    if not isinstance(tasks, list) or not tasks:
        raise ValueError("the template lists no tasks")
    seen: set[str] = set()
    for task in tasks:
        if not isinstance(task, dict) or not task.get("code") or not task.get("name"):
            raise ValueError("every task needs a code and a name")
        if task.get("parent") and task["parent"] not in seen:
            raise ValueError(f"task {task['code']} comes before its parent {task['parent']}")
        seen.add(str(task["code"]))
    return tasks


def contracts_write(records: list[tuple[Item, sf.Contract]], batch: Batch) -> None:
    """Write the activated contracts of won deals and their draft projects (module docstring)."""
    active = [(item, c) for item, c in records if c.activated and c.opportunity_id]
    batch.counts.unchanged += len(records) - len(active)
    # A draft contract, or one sold without a deal, provisions nothing.
    waiting = {c.external_id for _, c in active}
    batch.passed.extend(
        batch.record_key(c.external_id) for _, c in records if c.external_id not in waiting
    )
    if not active:
        return
    deals = records_by_ref(
        CRM, Opportunity, [c.opportunity_id for _, c in active], Opportunity.objects.all()
    )
    known = records_by_ref(CRM, Contract, [c.external_id for _, c in active])
    currencies = set(Currency.objects.values_list("code", flat=True))
    templates = mapping_tables_load(sets=[PROJECT_TEMPLATE_SET])
    plans, wbs = [], {}
    for item, contract in active:
        deal = deals.get(contract.opportunity_id)
        if deal is None or deal.stage != Opportunity.Stage.CLOSED_WON:
            batch.fail(
                item,
                contract.external_id,
                code="CUSTOMER_UNKNOWN",
                queue=Queue.PROJECT_SETUP,
                message=f"Contract {contract.sow_number or contract.number} waits: its deal "
                f"{contract.opportunity_id} is not onboarded yet (not won, or its customer "
                "is held in the customer-master queue).",
                suggested_fix="Resolve the deal's customer-master item; the project is set up "
                "by the next cycles on its own.",
                cause=f"opportunity:{contract.opportunity_id}",
                money_at_risk=contract.value,
                currency=contract.currency,
            )
            continue
        item = item._replace(correlation_id=deal.correlation_id or item.correlation_id)
        model = BILLING_MODELS.get(contract.billing_model)
        currency = contract.currency or deal.currency_id
        start = contract.start_date or deal.close_date or batch.today
        template = templates.lookup(PROJECT_TEMPLATE_SET, contract.billing_model, start)
        problem = None
        if model is None:
            problem = ("BILLING_MODEL_UNKNOWN", f"billing model {contract.billing_model!r}")
        elif currency not in currencies:
            problem = ("CURRENCY_UNKNOWN", f"currency {currency!r}")
        elif template is None:
            problem = ("PROJECT_TEMPLATE_UNMAPPED", f"no project template for {model.label}")
        else:
            try:
                wbs[contract.external_id] = (template, template_tasks(template.attributes))
            except ValueError as exc:
                problem = ("PROJECT_TEMPLATE_INVALID", f"template {template.target_value}: {exc}")
        if problem is not None:
            batch.fail(
                item,
                contract.external_id,
                code=problem[0],
                queue=Queue.MAPPING if "TEMPLATE" in problem[0] else Queue.PROJECT_SETUP,
                stage=Stage.MAP,
                message=f"Contract {contract.sow_number or contract.number} cannot be set up "
                f"as a project: {problem[1]}.",
                suggested_fix="Publish a project-template mapping for the contract's billing "
                "model (or correct the contract in the CRM), then replay.",
                cause=problem[1],
                money_at_risk=contract.value,
                currency=contract.currency,
            )
            continue
        plans.append(
            Plan(
                item=item,
                external_id=contract.external_id,
                existing=known.get(contract.external_id),
                values={
                    "customer": deal.customer_id,
                    "opportunity": deal.pk,
                    "name": (contract.sow_number or f"Contract {contract.number}")[:200],
                    "billing_model": model,
                    "currency": currency,
                    "value": contract.value,
                    "start_date": start,
                    "end_date": contract.end_date,
                    "status": Contract.Status.ACTIVE,
                },
                fixed={"correlation_id": item.correlation_id},
            )
        )
    done = plans_apply(
        batch, model=Contract, owner_entity="contract", plans=plans, queue=Queue.PROJECT_SETUP
    )
    by_id = {c.external_id: c for _, c in active}
    projects_draft(
        batch=batch,
        contracts={by_id[ext]: pk for ext, pk in done.items()},
        wbs={ext: tasks for ext, (_, tasks) in wbs.items()},
        names={by_id[ext]: deals[by_id[ext].opportunity_id].name for ext in done},
    )


def projects_draft(
    *,
    batch: Batch,
    contracts: dict[sf.Contract, int],
    wbs: dict[str, list[dict[str, Any]]],
    names: dict[sf.Contract, str],
) -> None:
    """Create each contract's project (draft) and WBS, or link the project of its code that
    exists already. A fixed number of queries per batch."""
    if not contracts:
        return
    codes = {c: project_code(c) for c in contracts}
    existing = Project.objects.in_bulk(set(codes.values()), field_name="code")
    rows = Contract.objects.select_related("customer").in_bulk(list(contracts.values()))
    linked, created = [], []
    for crm_contract, pk in contracts.items():
        contract, code = rows[pk], codes[crm_contract]
        project = existing.get(code)
        if project is not None:
            if project.contract_id is None:
                project.contract_id = pk
                linked.append(project)
            continue
        created.append(
            Project(
                code=code,
                name=names[crm_contract][:200],
                customer_id=contract.customer_id,
                contract_id=pk,
                legal_entity_id=contract.customer.legal_entity_id,
                currency_id=contract.currency_id,
                status=Project.Status.DRAFT,
                correlation_id=contract.correlation_id,
                mapping_versions=contract.mapping_versions,
            )
        )
        existing[code] = created[-1]
    actor = batch.run.actor
    if linked:
        audited_bulk_update(model=Project, objs=linked, fields=["contract"], actor=actor)
    if not created:
        return
    created = audited_bulk_create(model=Project, objs=created, actor=actor)
    by_code = {p.code: p for p in created}
    pending: list[tuple[Task, str | None]] = []
    for crm_contract in contracts:
        project = by_code.get(codes[crm_contract])
        if project is None:
            continue
        for task in wbs.get(crm_contract.external_id, []):
            parent = task.get("parent")
            pending.append(
                (
                    Task(
                        project=project,
                        code=f"{project.code}.{task['code']}"[:40],
                        name=str(task["name"])[:200],
                        allows_time=bool(task.get("allows_time", True)),
                        correlation_id=project.correlation_id,
                    ),
                    f"{project.code}.{parent}"[:40] if parent else None,
                )
            )
    # Level by level, parents first: a WBS is a few levels deep.
    made: dict[tuple[int, str], Task] = {}
    while pending:
        ready = [(t, p) for t, p in pending if p is None or (t.project_id, p) in made]
        if not ready:
            break
        for task, parent in ready:
            task.parent = made.get((task.project_id, parent)) if parent else None
        for task in audited_bulk_create(model=Task, objs=[t for t, _ in ready], actor=actor):
            made[task.project_id, task.code] = task
        pending = [(t, p) for t, p in pending if (t.project_id, t.code) not in made]


contract_flow = Flow(
    system=CRM,
    entity=CONTRACT,
    record=CONTRACT,
    read=sf.contract_read,
    write=contracts_write,
    what="a contract",
    close_stages=(Stage.PARSE, Stage.MAP, Stage.VALIDATE),
)
