"""Pairs "workers_erp" and "workers_psa": HR workers (canonical Worker rows, as HR sent them)
against the ERP's employees (SuiteQL) and the PSA's users (Kantata's list).

- ERP: matched on the employee number (the employee's externalid), else on e-mail. Every HR
  worker should have an employee, a terminated one too (inactive). Status: active (HR active or
  on leave; ERP not inactive) or inactive (HR terminated; ERP inactive).
- PSA: matched on e-mail (how the PSA's named users are linked). Role placeholders are not
  people and are left out. Workers HR has terminated need no user; PSA users carry no
  employment status in this dialect, so only presence is compared.
No money: these breaks carry none.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.contenttypes.models import ContentType

from reconciliation.pairs.base import Explaining, Pair, Row, Scope
from sync.integrations.kantata import reconcile_reads as kantata_reads
from sync.integrations.netsuite import reconcile_reads as netsuite_reads
from sync.models import ExternalRef, Worker
from sync.pipeline.models.exception_items import Queue

ACTIVE = "active"
INACTIVE = "inactive"
# HR's worker master is the time-and-expense team's input (the queue the pipeline parks
# worker problems in: sync/pipeline/master_data/erp_workers.py).
WORKER_QUEUE = Queue.TIME_AND_EXPENSE


def _workers(scope: Scope) -> list[tuple[int, str, str, str, int]]:
    workers = Worker.objects.all()
    if scope.legal_entity_id is not None:
        workers = workers.filter(legal_entity_id=scope.legal_entity_id)
    return list(
        workers.values_list(
            "pk", "employee_number", "email", "employment_status", "legal_entity_id"
        ).order_by("pk")
    )


def _row(
    *,
    key: str | None,
    match: str,
    external_id: str,
    required: bool,
    status: str,
    legal_entity_id: int | None = None,
    record_id: int | None = None,
) -> Row:
    return Row(
        key=key,
        match=match,
        external_id=external_id,
        required=required,
        status=status,
        quantity=None,
        amount=None,
        currency="",
        period="",
        legal_entity_id=legal_entity_id,
        project_id=None,
        record_id=record_id,
        approved_at=None,
    )


def _hr_status(status: str) -> str:
    return INACTIVE if status == Worker.EmploymentStatus.TERMINATED else ACTIVE


def erp_source_rows(scope: Scope) -> Iterator[list[Row]]:
    yield [
        _row(
            key=number,
            match=(email or "").lower(),
            external_id=number,
            required=True,
            status=_hr_status(status),
            legal_entity_id=entity,
            record_id=pk,
        )
        for pk, number, email, status, entity in _workers(scope)
    ]


def erp_target_rows(scope: Scope, connector: Any) -> Iterator[list[Row]]:
    for page in netsuite_reads.employees_pages(connector):
        yield [
            _row(
                key=str(e.get("externalid") or "") or None,
                match=str(e.get("email") or "").lower(),
                external_id=str(e["id"]),
                required=True,
                status=INACTIVE if e.get("isinactive") in ("T", True) else ACTIVE,
            )
            for e in page
        ]


def psa_source_rows(scope: Scope) -> Iterator[list[Row]]:
    yield [
        _row(
            key=(email or "").lower() or f"no-email:{number}",
            match="",
            external_id=number,
            required=status != Worker.EmploymentStatus.TERMINATED,
            status="",
            legal_entity_id=entity,
            record_id=pk,
        )
        for pk, number, email, status, entity in _workers(scope)
    ]


def psa_target_rows(scope: Scope, connector: Any) -> Iterator[list[Row]]:
    for page in kantata_reads.users_pages(connector):
        yield [
            _row(
                key=str(u.get("email_address") or "").lower() or f"no-email:{u['id']}",
                match="",
                external_id=str(u["id"]),
                required=True,
                status="",
            )
            for u in page
            if not u.get("is_placeholder")
        ]


def _hr_keys(numbers: list[str]) -> dict[str, list[str]]:
    """{employee number: the HR pipeline's record keys of that worker (by its SCIM id)}, in two
    queries whatever the number of breaks."""
    workers = dict(
        Worker.objects.filter(employee_number__in=[n for n in numbers if n]).values_list(
            "pk", "employee_number"
        )
    )
    keys: dict[str, list[str]] = {}
    for object_id, external_id in ExternalRef.objects.filter(
        system="hr",
        content_type=ContentType.objects.get_for_model(Worker),
        object_id__in=[str(pk) for pk in workers],
    ).values_list("object_id", "external_id"):
        keys.setdefault(workers[int(object_id)], []).append(f"hr:Users:{external_id}")
    return keys


def _explaining(prefix: str, breaks: list[tuple[str, list[str]]]) -> list[Explaining]:
    hr = _hr_keys([source for source, _ in breaks])
    return [
        Explaining(record_keys=hr.get(source, []) + [f"{prefix}:{t}" for t in targets])
        for source, targets in breaks
    ]


def erp_explaining(breaks: list[tuple[str, list[str]]]) -> list[Explaining]:
    return _explaining("erp:employee", breaks)


def psa_explaining(breaks: list[tuple[str, list[str]]]) -> list[Explaining]:
    return _explaining("psa:users", breaks)


ERP_PAIR = Pair(
    name="workers_erp",
    label="HR workers ↔ ERP employees",
    source_rows=erp_source_rows,
    target_rows=erp_target_rows,
    target_system="erp",
    queue=WORKER_QUEUE,
    explaining=erp_explaining,
    attribute=True,
    fixes={
        "missing_in_target": "HR has this worker but the ERP has no employee for them: create "
        "the employee in the ERP with externalId = the employee number.",
        "missing_in_source": "The ERP has an employee HR does not know: add the worker in HR, "
        "or make the ERP employee inactive.",
        "duplicate": "The ERP has more than one employee for this worker: merge them in the ERP.",
        "status_mismatch": "HR and the ERP disagree on whether this person is employed (e.g. "
        "terminated in HR, active in the ERP): make the ERP employee match HR.",
    },
)

PSA_PAIR = Pair(
    name="workers_psa",
    label="HR workers ↔ PSA users",
    source_rows=psa_source_rows,
    target_rows=psa_target_rows,
    target_system="psa",
    queue=WORKER_QUEUE,
    explaining=psa_explaining,
    fixes={
        "missing_in_target": "HR has this active worker but the PSA has no user with their "
        "e-mail: create or fix the user in the PSA.",
        "missing_in_source": "The PSA has a named user whose e-mail matches no HR worker: fix "
        "the e-mail in the PSA or HR, or mark the user a placeholder.",
        "duplicate": "The PSA has more than one user with this worker's e-mail: merge them.",
    },
)
