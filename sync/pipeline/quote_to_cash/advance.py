"""What a delivered quote-to-cash write sets in motion: the next writes, through the outbox.

Run by the cycle after its deliveries (`quote_to_cash_advance`); each pass is one transaction
and enqueues only what is due, so running it again changes nothing:

1. a delivered ERP customer gives its customer the ERP ref (the ERP's internal id) and moves it
   pending approval → approved (the ERP accepted it); then its CRM account gets that id
   (`ERP_Customer_Id__c`) and billing gets the customer;
2. a delivered billing customer, ERP job, WBS task or PSA workspace gives its record the ref;
3. a draft project whose customer the ERP has accepted is provisioned: → provisioning and its
   ERP job under the customer (subsidiary from the legal-entity mapping, currency);
4. once the job exists: its WBS tasks (each after its parent) and the PSA workspace, whose
   `external_reference` is the job's externalId (the project code); once the workspace exists,
   its stories (each after its parent), `external_reference` = the task's code. Where the
   operating model makes the PSA the project master (ownership of `project`), the workspace
   goes out with the job instead of after it: the master is written first, or at once;
5. a project with its job, its workspace and its whole WBS in both systems is open.

A project whose customer is not accepted stays `draft`: it waits, visibly, and never reaches
the ERP or the PSA without its customer. A delivery whose target id is linked to another record
already is a REFERENCE_CONFLICT item for integration ops, never a silent relink.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import Cast
from django.utils import timezone

from sync.audit import acting_as, audited_bulk_create, audited_bulk_update
from sync.integrations.kantata import workspaces as kt
from sync.integrations.netsuite import customers as ns
from sync.integrations.salesforce import deals as sf
from sync.integrations.stripe import customers as billing
from sync.mappings.selectors import mapping_tables_load, ownership_book_load
from sync.models import Currency, Customer, ExternalRef, Project, Task
from sync.pipeline.exception_items import Failure, exception_items_raise
from sync.pipeline.models import Delivery, SyncRun
from sync.pipeline.models.exception_items import Queue, Stage
from sync.pipeline.outbox.claims import deliveries_enqueue
from sync.pipeline.quote_to_cash.deliveries import (
    ACCOUNT_LINK,
    BILLING_CUSTOMER,
    CUSTOMER_UPSERT,
    JOB_UPSERT,
    STORY_UPSERT,
    TASK_UPSERT,
    WORKSPACE_UPSERT,
    connections_load,
    delivery_build,
)
from sync.pipeline.time_posting.references import LEGAL_ENTITY_SET

# Which ref a delivered operation gives its record: (system, model).
LINKS: dict[str, tuple[str, type[models.Model]]] = {
    CUSTOMER_UPSERT: ("erp", Customer),
    BILLING_CUSTOMER: ("billing", Customer),
    JOB_UPSERT: ("erp", Project),
    TASK_UPSERT: ("erp", Task),
    WORKSPACE_UPSERT: ("psa", Project),
    STORY_UPSERT: ("psa", Task),
}


def _has_ref(system: str, model: type[models.Model], field: str = "pk") -> Exists:
    return Exists(
        ExternalRef.objects.filter(
            system=system,
            content_type=ContentType.objects.get_for_model(model),
            # Refs hold ids as text (a currency's is its code): compare as text, which
            # PostgreSQL needs spelled out.
            object_id=Cast(OuterRef(field), output_field=models.CharField()),
        )
    )


def _refs(system: str, model: type[models.Model], pks: Iterable[int]) -> dict[int, str]:
    """{pk: external id} of the refs of `model` records in `system` (one query)."""
    return {
        int(object_id): ext
        for object_id, ext in ExternalRef.objects.filter(
            system=system,
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=[str(pk) for pk in pks],
        ).values_list("object_id", "external_id")
    }


def quote_to_cash_advance(*, run: SyncRun, now: dt.datetime | None = None) -> Counter:
    """One pass of the steps in the module docstring; returns what it did, by name
    (`deliveries` counts the new outbox rows). Idempotent."""
    now = now or timezone.now()
    counts: Counter = Counter()
    with transaction.atomic(), acting_as(run.actor):
        linked = {op: _refs_from_deliveries(op, run=run, now=now) for op in LINKS}
        counts["customers accepted"] = _customers_accept(linked[CUSTOMER_UPSERT], run=run)
        targets = connections_load()
        deliveries = [
            *_customer_followups(linked[CUSTOMER_UPSERT], targets=targets, now=now),
            *_jobs_provision(run=run, targets=targets, now=now, counts=counts),
            *_tasks_provision(targets=targets, now=now),
            *_workspaces_provision(targets=targets, now=now),
            *_stories_provision(targets=targets, now=now),
        ]
        counts["deliveries"] = deliveries_enqueue(deliveries=deliveries)
        counts["projects opened"] = _projects_open(run=run)
    return +counts


def projects_waiting_count() -> int:
    """Draft projects still waiting for the ERP to accept their customer."""
    return (
        Project.objects.filter(status=Project.Status.DRAFT, contract__isnull=False)
        .filter(~_has_ref("erp", Customer, "customer_id"))
        .count()
    )


def _refs_from_deliveries(operation: str, *, run: SyncRun, now: dt.datetime) -> list[int]:
    """Give each record delivered by `operation` its ref in the target; returns their pks."""
    system, model = LINKS[operation]
    ct = ContentType.objects.get_for_model(model)
    rows = list(
        Delivery.objects.filter(operation=operation, state=Delivery.State.DELIVERED)
        .exclude(target_id="")
        .filter(~_has_ref(system, model, "object_id"))
        .order_by("id")
        .values_list("object_id", "target_id", "correlation_id", "id")
    )
    if not rows:
        return []
    taken = dict(
        ExternalRef.objects.filter(
            system=system, content_type=ct, external_id__in=[r[1] for r in rows]
        ).values_list("external_id", "object_id")
    )
    refs, failures, done = [], [], []
    # The newest delivered version of each record (several versions may have been sent).
    for object_id, target_id, correlation_id, delivery_id in {r[0]: r for r in rows}.values():
        if target_id in taken:
            failures.append(
                Failure(
                    record_key=f"delivery:{operation}:{object_id}",
                    stage=Stage.DELIVER,
                    queue=Queue.INTEGRATION_OPS,
                    code="REFERENCE_CONFLICT",
                    category="technical",
                    message=f"The {system} answered {operation} of {model.__name__} "
                    f"{object_id} with {target_id}, which is linked to {model.__name__} "
                    f"{taken[target_id]} already.",
                    suggested_fix="Find which record is right in the target, correct the "
                    "cross-reference, then retry the delivery.",
                    cause=f"{system}:{model.__name__}:{target_id}",
                    correlation_id=correlation_id,
                    delivery_id=delivery_id,
                )
            )
            continue
        taken[target_id] = object_id
        refs.append(
            ExternalRef(
                system=system,
                content_type=ct,
                object_id=object_id,
                external_id=target_id,
                last_synced_at=now,
            )
        )
        done.append(int(object_id))
    audited_bulk_create(model=ExternalRef, objs=refs, actor=run.actor)
    exception_items_raise(failures=failures, run_id=run.id, now=now)
    return done


def _customers_accept(pks: list[int], *, run: SyncRun) -> int:
    customers = list(Customer.objects.filter(id__in=pks, status=Customer.Status.PENDING_APPROVAL))
    for customer in customers:
        customer.status = Customer.Status.APPROVED
    audited_bulk_update(model=Customer, objs=customers, fields=["status"], actor=run.actor)
    return len(customers)


def _customer_followups(pks: list[int], *, targets: dict, now: dt.datetime) -> list[Delivery]:
    """The CRM account's ERP link and the billing customer of each newly accepted customer."""
    if not pks:
        return []
    customers = Customer.objects.select_related("legal_entity").in_bulk(pks)
    erp_ids, crm_ids = _refs("erp", Customer, pks), _refs("crm", Customer, pks)
    out = []
    for pk, customer in customers.items():
        erp_id, account = erp_ids.get(pk), crm_ids.get(pk)
        if erp_id and account and "crm" in targets:
            out.append(
                delivery_build(
                    connection=targets["crm"],
                    operation=ACCOUNT_LINK,
                    record=customer,
                    key=f"{pk}:{erp_id}",
                    external_id=account,
                    record_type="Account",
                    body=sf.account_erp_link_body(erp_customer_id=erp_id),
                    correlation_id=customer.correlation_id,
                    now=now,
                )
            )
        if erp_id and "billing" in targets:
            out.append(
                delivery_build(
                    connection=targets["billing"],
                    operation=BILLING_CUSTOMER,
                    record=customer,
                    key=str(pk),
                    external_id=f"LB-CUST-{pk}",
                    record_type=billing.RECORD_TYPE,
                    body=billing.billing_customer_body(
                        name=customer.name,
                        erp_customer_id=erp_id,
                        crm_account_id=account or "",
                        currency=customer.legal_entity.functional_currency_id,
                    ),
                    correlation_id=customer.correlation_id,
                    now=now,
                )
            )
    return out


def _jobs_provision(
    *, run: SyncRun, targets: dict, now: dt.datetime, counts: Counter
) -> list[Delivery]:
    """Draft projects whose customer the ERP accepted → provisioning, and their ERP job."""
    erp = targets.get("erp")
    if erp is None:
        return []
    ready = list(
        Project.objects.filter(status=Project.Status.DRAFT, contract__isnull=False)
        .filter(_has_ref("erp", Customer, "customer_id"), ~_has_ref("erp", Project))
        .select_related("legal_entity", "contract")
    )
    counts["projects waiting for their customer"] = Project.objects.filter(
        status=Project.Status.DRAFT, contract__isnull=False
    ).count() - len(ready)
    if not ready:
        return []
    mappings = mapping_tables_load(sets=[LEGAL_ENTITY_SET])
    customers = _refs("erp", Customer, [p.customer_id for p in ready])
    currencies = dict(
        ExternalRef.objects.filter(
            system="erp",
            content_type=ContentType.objects.get_for_model(Currency),
            object_id__in=[p.currency_id for p in ready],
        ).values_list("object_id", "external_id")
    )
    provisioned, out = [], []
    for project in ready:
        subsidiary = mappings.lookup(LEGAL_ENTITY_SET, project.legal_entity.code, now.date())
        if subsidiary is None:  # unmapped since the deal was onboarded: wait for the mapping
            continue
        project.status = Project.Status.PROVISIONING
        provisioned.append(project)
    audited_bulk_update(model=Project, objs=provisioned, fields=["status"], actor=run.actor)
    for project in provisioned:
        subsidiary = mappings.lookup(LEGAL_ENTITY_SET, project.legal_entity.code, now.date())
        out.append(
            delivery_build(
                connection=erp,
                operation=JOB_UPSERT,
                record=project,
                key=f"{project.pk}:v{project.version}",
                external_id=project.code,
                record_type=ns.JOB,
                body=ns.job_body(
                    code=project.code,
                    name=project.name,
                    customer={"id": customers[project.customer_id]},
                    subsidiary=subsidiary.target_value,
                    currency=currencies.get(project.currency_id),
                    start=project.contract.start_date,
                    end=project.contract.end_date,
                ),
                correlation_id=project.correlation_id,
                now=now,
                amount=project.contract.value,
                currency=project.currency_id,
            )
        )
    counts["projects provisioned"] = len(provisioned)
    return out


def _wbs_ready(system: str) -> tuple[list[Task], dict, dict]:
    """The WBS tasks of provisioning projects that `system` holds the project (and the parent
    task) of but not the task itself, with the project's and parents' ids in `system`. Already
    enqueued ones are skipped later by their idempotency key (task and version)."""
    tasks = list(
        Task.objects.filter(project__status=Project.Status.PROVISIONING)
        .filter(_has_ref(system, Project, "project_id"), ~_has_ref(system, Task))
        .filter(models.Q(parent__isnull=True) | _has_ref(system, Task, "parent_id"))
    )
    if not tasks:
        return [], {}, {}
    projects = _refs(system, Project, {t.project_id for t in tasks})
    parents = _refs(system, Task, {t.parent_id for t in tasks if t.parent_id})
    return tasks, projects, parents


def _tasks_provision(*, targets: dict, now: dt.datetime) -> list[Delivery]:
    """WBS tasks of provisioning projects whose job (and parent task) the ERP holds."""
    erp = targets.get("erp")
    if erp is None:
        return []
    tasks, jobs, parents = _wbs_ready("erp")
    return [
        delivery_build(
            connection=erp,
            operation=TASK_UPSERT,
            record=task,
            key=f"{task.pk}:v{task.version}",
            external_id=task.code,
            record_type=ns.PROJECT_TASK,
            body=ns.project_task_body(
                code=task.code,
                title=task.name,
                job={"id": jobs[task.project_id]},
                parent={"id": parents[task.parent_id]} if task.parent_id else None,
            ),
            correlation_id=task.correlation_id,
            now=now,
        )
        for task in tasks
    ]


def _workspaces_provision(*, targets: dict, now: dt.datetime) -> list[Delivery]:
    """The PSA workspace of each provisioning project whose job the ERP holds (or, when the PSA
    is the project master, of each provisioning project at once)."""
    psa = targets.get("psa")
    if psa is None:
        return []
    today = timezone.localdate(now)
    master = ownership_book_load(on=today).owner("project", "", today) or "erp"
    projects = Project.objects.filter(status=Project.Status.PROVISIONING).filter(
        ~_has_ref("psa", Project)
    )
    if master != "psa":
        projects = projects.filter(_has_ref("erp", Project))
    projects = list(projects.select_related("customer", "legal_entity", "contract"))
    return [
        delivery_build(
            connection=psa,
            operation=WORKSPACE_UPSERT,
            record=project,
            key=f"{project.pk}:v{project.version}",
            external_id=project.code,
            record_type=kt.RECORD_TYPE,
            body=kt.workspace_body(
                title=project.name,
                client_name=project.customer.name,
                legal_entity=project.legal_entity.code,
                currency=project.currency_id,
                start=project.contract.start_date if project.contract else None,
                end=project.contract.end_date if project.contract else None,
                price=project.contract.value if project.contract else 0,
            ),
            correlation_id=project.correlation_id,
            now=now,
        )
        for project in projects
    ]


def _stories_provision(*, targets: dict, now: dt.datetime) -> list[Delivery]:
    """The WBS stories of provisioning projects whose workspace (and parent story) the PSA
    holds; each story's external_reference is its task's code, the ERP task's externalId."""
    psa = targets.get("psa")
    if psa is None:
        return []
    tasks, workspaces, parents = _wbs_ready("psa")
    return [
        delivery_build(
            connection=psa,
            operation=STORY_UPSERT,
            record=task,
            key=f"{task.pk}:v{task.version}",
            external_id=task.code,
            record_type=kt.STORY_RECORD_TYPE,
            body=kt.story_body(
                title=task.name,
                workspace_id=workspaces[task.project_id],
                parent_id=parents.get(task.parent_id) if task.parent_id else None,
                allows_time=task.allows_time,
            ),
            correlation_id=task.correlation_id,
            now=now,
        )
        for task in tasks
    ]


def _projects_open(*, run: SyncRun) -> int:
    """Provisioning projects whose job, workspace and whole WBS (ERP tasks and PSA stories)
    both systems hold are open."""
    unsent = Task.objects.filter(project=OuterRef("pk")).filter(
        ~_has_ref("erp", Task) | ~_has_ref("psa", Task)
    )
    projects = list(
        Project.objects.filter(status=Project.Status.PROVISIONING).filter(
            _has_ref("erp", Project), _has_ref("psa", Project), ~Exists(unsent)
        )
    )
    for project in projects:
        project.status = Project.Status.OPEN
    audited_bulk_update(model=Project, objs=projects, fields=["status"], actor=run.actor)
    return len(projects)
