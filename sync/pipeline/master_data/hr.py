"""HR (SCIM 2.0 Users with the enterprise and costing extensions) → Worker + ExternalRef(hr).

Payloads are the Users `ScimConnector.pull(entity="Users")` yields. The HR ref's external id is
the SCIM resource `id` (what `manager.value` points at); a Worker is matched by that ref, else
by employee number (enterprise `employeeNumber`, else `externalId`).

- legal entity: enterprise `division` or `organization`, matched against legal entity codes,
  then names (the sandbox HR feed carries the code in `division` and the name in
  `organization`); none matches → LEGAL_ENTITY_UNKNOWN for the mapping admins, parked;
- cost centre: `costCenter` by code, the worker's legal entity first; unknown or absent →
  left empty (the time rule COST_CENTRE_MISSING reports it where it matters);
- manager: `manager.value` → the worker with that HR ref, also within the batch (managers
  first);
- employment status: `active` false → terminated; true → active (an on-leave worker stays on
  leave: SCIM has no such state);
- cost rate: the costing extension's `costRate {amount, currency}`, encrypted at rest; a
  currency Ledgerbridge lacks is created (ISO code, 2 minor units).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Q

from sync.audit import audited_bulk_create
from sync.models import CostCentre, Currency, LegalEntity, Worker
from sync.pipeline.master_data.engine import (
    Plan,
    Reader,
    levels_apply,
    plans_apply,
    records_by_ref,
    refs_load,
)
from sync.pipeline.models.exception_items import Queue
from sync.pipeline.processing import Batch

SYSTEM = "hr"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
COSTING_URN = "urn:ledgerbridge:params:scim:schemas:extension:costing:2.0:User"
Status = Worker.EmploymentStatus


@dataclass(frozen=True)
class ScimUser:
    external_id: str  # the SCIM resource id
    employee_number: str
    name: str
    email: str
    entity_keys: tuple[str, ...]
    cost_centre: str | None
    manager: str | None
    active: bool
    cost_rate: Decimal | None
    cost_currency: str | None


def user_parse(payload: Any) -> ScimUser:
    r = Reader(payload, what="SCIM User")
    data = r.payload
    enterprise = data.get(ENTERPRISE_URN) or {}
    costing = data.get(COSTING_URN) or {}
    if not isinstance(enterprise, dict) or not isinstance(costing, dict):
        r.errors.append("The enterprise and costing extensions must be JSON objects.")
        enterprise, costing = {}, {}
    external_id = r.text("id")
    number = r.text("employeeNumber", required=False, max_length=40, source=enterprise) or (
        r.text("externalId", required=False, max_length=40)
    )
    if number is None:
        r.errors.append("Neither enterprise `employeeNumber` nor `externalId` is set.")
    names = data.get("name") if isinstance(data.get("name"), dict) else {}
    name = r.text("displayName", required=False, max_length=200) or r.text(
        "formatted", required=False, max_length=200, source=names
    )
    if name is None:
        r.errors.append("Neither `displayName` nor `name.formatted` is set.")
    email = r.text("userName", required=False) or ""
    if "@" not in email:
        emails = data.get("emails") if isinstance(data.get("emails"), list) else []
        primary = [e for e in emails if isinstance(e, dict) and e.get("primary")] or [
            e for e in emails if isinstance(e, dict)
        ]
        email = str(primary[0].get("value") or "") if primary else ""
    active = r.flag("active", required=True)
    manager = enterprise.get("manager")
    manager_id = (
        r.text("value", required=False, source=manager) if isinstance(manager, dict) else None
    )
    rate = costing.get("costRate")
    cost_rate = cost_currency = None
    if isinstance(rate, dict):
        cost_rate = r.amount("costRate.amount", rate.get("amount"))
        cost_currency = r.text("currency", required=cost_rate is not None, source=rate)
        if cost_currency is not None and not (len(cost_currency) == 3 and cost_currency.isalpha()):
            r.errors.append("`costRate.currency` must be a three-letter ISO 4217 code.")
    keys = tuple(
        k
        for k in (
            r.text("division", required=False, source=enterprise),
            r.text("organization", required=False, source=enterprise),
        )
        if k
    )
    r.done()
    return ScimUser(
        external_id=external_id,
        employee_number=number,
        name=name,
        email=email.lower()[:254],
        entity_keys=keys,
        cost_centre=r.text("costCenter", required=False, max_length=30, source=enterprise),
        manager=manager_id,
        active=active,
        cost_rate=cost_rate,
        cost_currency=cost_currency.upper() if cost_currency else None,
    )


def user_plan(records: list[tuple[Any, ScimUser]], batch: Batch) -> None:
    users = [u for _, u in records]
    keys = {k for u in users for k in u.entity_keys}
    entities = list(LegalEntity.objects.filter(Q(code__in=keys) | Q(name__in=keys)))
    by_code = {e.code: e.pk for e in entities}
    by_name = {e.name: e.pk for e in entities}
    centres: dict[str, dict[int, int]] = {}
    for centre in CostCentre.objects.filter(code__in={u.cost_centre for u in users}):
        centres.setdefault(centre.code, {})[centre.legal_entity_id] = centre.pk
    _currencies_ensure({u.cost_currency for u in users if u.cost_currency}, batch)
    by_ref = records_by_ref(SYSTEM, Worker, [u.external_id for u in users])
    by_number = Worker.objects.in_bulk(
        {u.employee_number for u in users}, field_name="employee_number"
    )
    managers = refs_load(SYSTEM, Worker, [u.manager for u in users if u.manager])
    plans = []
    for item, u in records:
        entity = next(
            (
                by_code.get(k) or by_name.get(k)
                for k in u.entity_keys
                if by_code.get(k) or by_name.get(k)
            ),
            None,
        )
        if entity is None:
            batch.fail(
                item,
                u.external_id,
                code="LEGAL_ENTITY_UNKNOWN",
                queue=Queue.MAPPING,
                cause=f"organization:{'/'.join(u.entity_keys)}",
                message=f"Worker {u.employee_number}'s organisation "
                f"{' / '.join(u.entity_keys) or '(none)'} matches no legal entity.",
                suggested_fix="Correct the worker's organisation in HR, or sync the legal "
                "entity from the ERP, then replay.",
            )
            continue
        existing = by_ref.get(u.external_id) or by_number.get(u.employee_number)
        status = Status.ACTIVE if u.active else Status.TERMINATED
        if u.active and existing is not None and existing.employment_status == Status.ON_LEAVE:
            status = Status.ON_LEAVE
        options = centres.get(u.cost_centre or "", {})
        centre = options.get(entity) or next(iter(options.values()), None)
        plans.append(
            (
                Plan(
                    item=item,
                    external_id=u.external_id,
                    existing=existing,
                    values={
                        "employee_number": u.employee_number,
                        "name": u.name,
                        "email": u.email,
                        "legal_entity": entity,
                        "cost_centre": centre,
                        "employment_status": status,
                        "cost_rate": u.cost_rate,
                        "cost_rate_currency": u.cost_currency,
                    },
                    natural_key=u.employee_number,
                ),
                u.manager,
            )
        )

    def apply(ready: list[Plan]) -> dict[str, Any]:
        return plans_apply(
            batch, model=Worker, owner_entity="worker", plans=ready, queue=Queue.TIME_AND_EXPENSE
        )

    levels_apply(batch, plans=plans, parent_field="manager", known=managers, apply=apply)


def _currencies_ensure(codes: set[str], batch: Batch) -> None:
    """Create the currencies a cost rate names that Ledgerbridge lacks (ISO code only)."""
    if not codes:
        return
    missing = codes - set(Currency.objects.filter(code__in=codes).values_list("code", flat=True))
    if missing:
        audited_bulk_create(
            model=Currency,
            objs=[Currency(code=c, name=c) for c in sorted(missing)],
            actor=batch.run.actor,
        )
