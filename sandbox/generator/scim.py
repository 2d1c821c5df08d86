"""The firm in HR (SCIM 2.0): one User per named worker; role placeholders are never HR users.

Storage follows `sandbox/scim/schema.py`: object_type "User", `external_id` is the HR
worker key ("E-00042", also the employeeNumber), `status` "active"/"inactive" (terminated),
`parent_id` the manager's record id, the enterprise extension carries costCenter (left out for
the planted workers without one), the costing extension the cost rate as a decimal string.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sandbox.generator.firm import ENTITY_BY_CODE, Firm, Worker, at
from sandbox.generator.writer import IdBook, Row
from sandbox.scim.schema import COSTING_URN, ENTERPRISE_URN, OBJECT_TYPE, SYSTEM, scim_id

DEPARTMENTS = {"100": "Consulting", "200": "Technology", "300": "Delivery Management"}


def ids_assign(firm: Firm, book: IdBook) -> None:
    for worker in firm.workers:
        book.assign(SYSTEM, OBJECT_TYPE, worker.key)


def rows(firm: Firm, book: IdBook) -> Iterator[Row]:
    for worker in firm.workers:
        yield _user(firm, book, worker)


def _user(firm: Firm, book: IdBook, worker: Worker) -> Row:
    entity = ENTITY_BY_CODE[worker.entity]
    enterprise: dict = {
        "employeeNumber": worker.key,
        "organization": entity.name,
        "division": entity.code,
        "department": DEPARTMENTS[worker.cost_centre[-3:]] if worker.cost_centre else None,
    }
    if worker.cost_centre is not None:
        enterprise["costCenter"] = worker.cost_centre
    enterprise = {k: v for k, v in enterprise.items() if v is not None}
    manager_id = None
    if worker.manager is not None:
        manager_id = book[SYSTEM, OBJECT_TYPE, worker.manager.key]
        enterprise["manager"] = {"value": scim_id(manager_id), "displayName": worker.manager.name}
    active = worker.terminated is None
    data = {
        "userName": worker.email,
        "name": {
            "givenName": worker.first_name,
            "familyName": worker.last_name,
            "formatted": worker.name,
        },
        "displayName": worker.name,
        "title": worker.role,
        "userType": "Employee",
        "active": active,
        "emails": [{"value": worker.email, "type": "work", "primary": True}],
        ENTERPRISE_URN: enterprise,
        COSTING_URN: {
            "costRate": {
                "amount": f"{worker.cost_rate_cents // 100}.{worker.cost_rate_cents % 100:02d}",
                "currency": entity.currency,
            },
            "effectiveFrom": max(worker.hired, dt.date(worker.hired.year, 1, 1)).isoformat(),
        },
    }
    created = at(worker.hired - dt.timedelta(days=14))
    updated = at(worker.terminated, 18) if worker.terminated else created + dt.timedelta(days=1)
    return (
        book[SYSTEM, OBJECT_TYPE, worker.key],
        SYSTEM,
        OBJECT_TYPE,
        worker.key,
        manager_id,
        "active" if active else "inactive",
        data,
        created,
        min(updated, firm.now),
    )
