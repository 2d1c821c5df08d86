"""The firm in the ERP (NetSuite REST record service).

Storage follows `sandbox/netsuite/schema.py`: object_type is the REST record type, `data`
holds body fields by REST name, references and select options as id strings, sublists as lists
of line dicts; `parent_id`/`status` are promoted with the schema's own `parent_field` and
`status_of`. Numbers (hours, rates, amounts) are exact JSON decimals.

What is *not* in the ERP, on purpose: the acquired entity LB-NL (no subsidiary: its projects
cannot be provisioned), projects that start after the as-of date (not provisioned yet), PSA-only
stories (planted unknown tasks), role placeholders, and the approved time and expenses that
could not be posted (planted faults) or are not posted yet (the last week's backlog).

Accounting periods are written per subsidiary (`subsidiary` is an addition to the schema's
fields) with the same months closed for every subsidiary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from sandbox.generator.firm import (
    COST_CENTRES,
    ENTITIES,
    ENTITY_BY_CODE,
    Customer,
    Firm,
    Project,
    at,
)
from sandbox.generator.writer import IdBook, Row, money, money_cached, stamp
from sandbox.netsuite.schema import (
    ACCOUNTING_PERIOD,
    CURRENCY,
    CUSTOMER,
    CUSTOMER_PAYMENT,
    DEPARTMENT,
    EMPLOYEE,
    EXPENSE_REPORT,
    INVOICE,
    JOB,
    PROJECT_TASK,
    SUBSIDIARY,
    SYSTEM,
    TIME_BILL,
    RecordSpec,
    status_of,
)

APPROVED = "2"  # approvalStatus "Approved"
CURRENCY_NAMES = {"USD": "US Dollar", "GBP": "British Pound", "EUR": "Euro"}


def time_bill_key(time_entry_id: int) -> str:
    """externalId of the time bill a PSA time entry was posted as."""
    return f"KT-TE-{time_entry_id}"


def expense_report_key(expense_id: int) -> str:
    return f"KT-EX-{expense_id}"


def duplicate_key(customer: Customer) -> str:
    return f"{customer.key}#duplicate"


def _row(
    spec: RecordSpec,
    record_id: int,
    external_id: str | None,
    data: dict,
    created: dt.datetime,
    updated: dt.datetime,
) -> Row:
    parent = data.get(spec.parent_field) if spec.parent_field else None
    return (
        record_id,
        SYSTEM,
        spec.name,
        external_id,
        None if parent is None else int(parent),
        status_of(spec, data),
        data,
        created,
        updated,
    )


def ids_assign(firm: Firm, book: IdBook) -> None:
    for code in sorted(CURRENCY_NAMES):
        book.assign(SYSTEM, CURRENCY.name, code)
    for entity in ENTITIES:
        if entity.erp_mapped:
            book.assign(SYSTEM, SUBSIDIARY.name, entity.code)
            for code, _name in COST_CENTRES:
                book.assign(SYSTEM, DEPARTMENT.name, f"{entity.code[-2:]}-{code}")
    for period in firm.periods:
        book.assign(SYSTEM, ACCOUNTING_PERIOD.name, f"{period.entity}:{period.start}")
    for customer in firm.customers:
        if customer.in_erp:
            book.assign(SYSTEM, CUSTOMER.name, customer.key)
            if customer.erp_duplicate:
                book.assign(SYSTEM, CUSTOMER.name, duplicate_key(customer))
    for worker in firm.workers:
        book.assign(SYSTEM, EMPLOYEE.name, worker.key)
    for project in firm.projects:
        if project.provisioned:
            book.assign(SYSTEM, JOB.name, project.key)
            for task in project.tasks:
                if task.erp != "missing":
                    book.assign(SYSTEM, PROJECT_TASK.name, task.key)


def customer_id(book: IdBook, customer: Customer) -> int | None:
    return book.get(SYSTEM, CUSTOMER.name, customer.key)


def rows(firm: Firm, book: IdBook) -> Iterator[Row]:
    """Master data: currencies, subsidiaries, departments, periods, customers, employees, jobs,
    project tasks."""
    setup = at(firm.horizon_start - dt.timedelta(days=720))
    for code, name in sorted(CURRENCY_NAMES.items()):
        yield _row(
            CURRENCY,
            book[SYSTEM, CURRENCY.name, code],
            None,
            {"name": name, "symbol": code, "isInactive": False},
            setup,
            setup,
        )
    for entity in ENTITIES:
        if not entity.erp_mapped:
            continue
        subsidiary = book[SYSTEM, SUBSIDIARY.name, entity.code]
        yield _row(
            SUBSIDIARY,
            subsidiary,
            entity.code,
            {
                "name": entity.name,
                "currency": str(book[SYSTEM, CURRENCY.name, entity.currency]),
                "country": entity.country,
                "isInactive": False,
            },
            setup,
            setup,
        )
        for code, name in COST_CENTRES:
            key = f"{entity.code[-2:]}-{code}"
            yield _row(
                DEPARTMENT,
                book[SYSTEM, DEPARTMENT.name, key],
                key,
                {
                    "name": f"{key} {name}",
                    "subsidiary": str(subsidiary),
                    "isInactive": False,
                },
                setup,
                setup,
            )
    for period in firm.periods:
        closed_at = at(period.end + dt.timedelta(days=12), 17) if period.closed else setup
        yield _row(
            ACCOUNTING_PERIOD,
            book[SYSTEM, ACCOUNTING_PERIOD.name, f"{period.entity}:{period.start}"],
            None,
            {
                "periodName": period.name,
                "startDate": period.start.isoformat(),
                "endDate": period.end.isoformat(),
                "closed": period.closed,
                "isQuarter": False,
                "isYear": False,
                "isInactive": False,
                "subsidiary": str(book[SYSTEM, SUBSIDIARY.name, period.entity]),
            },
            setup,
            closed_at,
        )
    for customer in firm.customers:
        if customer.in_erp:
            yield from _customers(firm, book, customer)
    for worker in firm.workers:
        subsidiary = book[SYSTEM, SUBSIDIARY.name, worker.entity]
        data = {
            "firstName": worker.first_name,
            "lastName": worker.last_name,
            "entityId": worker.name,
            "email": worker.email,
            "subsidiary": str(subsidiary),
            "laborCost": money(worker.cost_rate_cents),
            "isInactive": worker.terminated is not None,
            "title": worker.role,
        }
        if worker.cost_centre is not None:
            data["department"] = str(book[SYSTEM, DEPARTMENT.name, worker.cost_centre])
        if worker.manager is not None:
            data["supervisor"] = str(book[SYSTEM, EMPLOYEE.name, worker.manager.key])
        created = at(worker.hired - dt.timedelta(days=5))
        updated = at(worker.terminated, 19) if worker.terminated else created
        yield _row(
            EMPLOYEE,
            book[SYSTEM, EMPLOYEE.name, worker.key],
            worker.key,
            data,
            created,
            min(updated, firm.now),
        )
    for project in firm.projects:
        if project.provisioned:
            yield from _job(firm, book, project)


def _customers(firm: Firm, book: IdBook, customer: Customer) -> Iterator[Row]:
    created = at(firm.horizon_start - dt.timedelta(days=380 - customer.index % 300))
    data = {
        "companyName": customer.name,
        "entityId": customer.key,
        "email": f"ap@{customer.name.split(' ')[0].lower()}{customer.index}.example",
        "subsidiary": str(book[SYSTEM, SUBSIDIARY.name, customer.entity]),
        "currency": str(book[SYSTEM, CURRENCY.name, customer.currency]),
        "isInactive": False,
        "creditLimit": money(250_000_00),
    }
    if customer.tax_id is not None:
        data["vatRegNumber"] = customer.tax_id
    yield _row(
        CUSTOMER,
        book[SYSTEM, CUSTOMER.name, customer.key],
        customer.key,
        data,
        created,
        created + dt.timedelta(days=2),
    )
    if customer.erp_duplicate:
        # Planted: an AR clerk keyed the customer in by hand (no externalId; a trailing dot).
        stamp = at(firm.as_of - dt.timedelta(days=40 + customer.index % 30))
        duplicate = {**data, "companyName": f"{customer.name}.", "entityId": None}
        duplicate = {k: v for k, v in duplicate.items() if v is not None}
        yield _row(
            CUSTOMER,
            book[SYSTEM, CUSTOMER.name, duplicate_key(customer)],
            None,
            duplicate,
            stamp,
            stamp,
        )


def _job(firm: Firm, book: IdBook, project: Project) -> Iterator[Row]:
    job = book[SYSTEM, JOB.name, project.key]
    created = at(min(project.start, firm.as_of) - dt.timedelta(days=9))
    if project.end < firm.as_of:
        status = "1"  # Closed
    elif project.start > firm.as_of:
        status = "5"  # Awarded
    else:
        status = "2"  # In Progress
    yield _row(
        JOB,
        job,
        project.key,
        {
            "companyName": project.name,
            "entityId": project.key,
            "parent": str(book[SYSTEM, CUSTOMER.name, project.customer.key]),
            "subsidiary": str(book[SYSTEM, SUBSIDIARY.name, project.entity]),
            "currency": str(book[SYSTEM, CURRENCY.name, project.currency]),
            "entityStatus": status,
            "startDate": project.start.isoformat(),
            "projectedEndDate": project.end.isoformat(),
            "isInactive": False,
        },
        created,
        created,
    )
    phases: dict[str, int] = {}
    for task in project.tasks:
        if task.erp == "missing":
            continue
        task_id = book[SYSTEM, PROJECT_TASK.name, task.key]
        if not task.leaf:
            phases[task.title] = task_id
        data = {
            "title": task.title,
            "company": str(job),
            "status": "COMPLETE" if task.erp == "closed" else "PROGRESS",
            "plannedWork": 200,
            "startDate": task.start.isoformat(),
            "endDate": task.end.isoformat(),
        }
        if task.phase in phases:
            data["parent"] = str(phases[task.phase])
        updated = at(task.end, 18) if task.erp == "closed" else created
        yield _row(PROJECT_TASK, task_id, task.key, data, created, updated)


def time_bill(
    record_id: int,
    time_entry_id: int,
    employee: str,
    job: str,
    task: str,
    department: str,
    subsidiary: str,
    day: str,
    minutes: int,
    rate_cents: int,
    billable: bool,
    posted: str,
) -> Row:
    """One posted time bill (hot path: `day` is ISO text, `posted` from `time_bill_posted`)."""
    data = {
        "employee": employee,
        "customer": job,
        "caseTaskEvent": task,
        "tranDate": day,
        "hours": money_cached(minutes * 100 // 60),
        "rate": money_cached(rate_cents),
        "isBillable": billable,
        "department": department,
        "subsidiary": subsidiary,
        "memo": f"Kantata time entry {time_entry_id}",
        "approvalStatus": APPROVED,
    }
    return (
        record_id,
        SYSTEM,
        TIME_BILL.name,
        time_bill_key(time_entry_id),
        int(job),
        APPROVED,
        data,
        posted,
        posted,
    )


def time_bill_posted(day: dt.date, now: dt.datetime) -> str:
    """When approved time of `day` was posted: three days later, overnight."""
    return stamp(min(at(day + dt.timedelta(days=3), 2), now))


def expense_report(
    record_id: int,
    expense_id: int,
    employee: str,
    job: str,
    department: str,
    subsidiary: str,
    currency: str,
    day: dt.date,
    category: str,
    amount_cents: int,
    billable: bool,
    now: dt.datetime,
) -> Row:
    posted = min(at(day + dt.timedelta(days=4), 2), now)
    data = {
        "tranId": f"ER-{record_id}",
        "entity": employee,
        "tranDate": day.isoformat(),
        "subsidiary": subsidiary,
        "currency": currency,
        "department": department,
        "memo": f"Kantata expense {expense_id}",
        "approvalStatus": APPROVED,
        "total": money(amount_cents),
        "expense": [
            {
                "line": 1,
                "expenseDate": day.isoformat(),
                "category": category,
                "amount": money(amount_cents),
                "customer": job,
                "department": department,
                "isBillable": billable,
                "memo": category,
            }
        ],
    }
    return (
        record_id,
        SYSTEM,
        EXPENSE_REPORT.name,
        expense_report_key(expense_id),
        int(employee),
        APPROVED,
        data,
        posted,
        posted,
    )


def invoice(
    *,
    record_id: int,
    number: str,
    customer: int,
    job: int | None,
    subsidiary: int,
    currency: int,
    day: dt.date,
    due: dt.date,
    paid: bool,
    memo: str,
    lines: list[tuple[str, str, str, int, int]],
    now: dt.datetime,
) -> Row:
    """lines: (item, description, quantity text, rate cents, amount cents)."""
    total = sum(line[4] for line in lines)
    data = {
        "tranId": number,
        "entity": str(customer),
        "tranDate": day.isoformat(),
        "dueDate": due.isoformat(),
        "subsidiary": str(subsidiary),
        "currency": str(currency),
        "memo": memo,
        "otherRefNum": number,
        "status": "B" if paid else "A",
        "total": money(total),
        "amountRemaining": money(0 if paid else total),
        "item": [
            {
                "line": n,
                "item": item,
                "description": text,
                "quantity": quantity,
                "rate": money(rate),
                "amount": money(amount),
            }
            for n, (item, text, quantity, rate, amount) in enumerate(lines, start=1)
        ],
    }
    if job is not None:
        data["job"] = str(job)
    created = min(at(day, 8), now)
    return (
        record_id,
        SYSTEM,
        INVOICE.name,
        number,
        customer,
        data["status"],
        data,
        created,
        min(at(due, 12), now) if paid else created,
    )


def customer_payment(
    *,
    record_id: int,
    invoice_id: int,
    number: str,
    customer: int,
    subsidiary: int,
    currency: int,
    day: dt.date,
    amount_cents: int,
    now: dt.datetime,
) -> Row:
    data = {
        "tranId": f"PYMT-{number}",
        "customer": str(customer),
        "tranDate": day.isoformat(),
        "payment": money(amount_cents),
        "subsidiary": str(subsidiary),
        "currency": str(currency),
        "memo": f"Payment of {number}",
        "apply": [{"doc": str(invoice_id), "apply": True, "amount": money(amount_cents)}],
    }
    stamp = min(at(day, 12), now)
    return (
        record_id,
        SYSTEM,
        CUSTOMER_PAYMENT.name,
        f"PYMT-{number}",
        customer,
        "",
        data,
        stamp,
        stamp,
    )


def entity_refs(book: IdBook, entity: str) -> tuple[int, int]:
    """(subsidiary id, currency id) of a mapped entity."""
    return (
        book[SYSTEM, SUBSIDIARY.name, entity],
        book[SYSTEM, CURRENCY.name, ENTITY_BY_CODE[entity].currency],
    )
