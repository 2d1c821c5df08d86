"""ERP-side business rules of the NetSuite sandbox: defaults sourced from related records, then
the checks a real account refuses a write for.

Each refusal is a 400 in NetSuite's error shape; `o:errorPath` names the field. The rules are:
- a transaction dated in a closed accounting period (`tranDate`);
- an inactive customer (on a project, time, expense line or invoice);
- a closed project (entityStatus "Closed" or inactive) on time, expense lines, invoices, tasks;
- an unknown task, or a task of another project (`caseTaskEvent`, INVALID_CONTENT);
- a missing department on time bills and expense reports (after sourcing it from the employee);
- a subsidiary or currency that does not match the customer's, employee's or subsidiary's.

Idempotent: `record_prepare` only reads; it returns the data to store.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandbox.models import SandboxRecord
from sandbox.netsuite.records import (
    closed_periods_covering,
    invalid_value,
    record_find,
    required_check,
    required_missing,
    user_error,
)
from sandbox.netsuite.schema import JOB_STATUS_CLOSED, RecordSpec


def _name(row: SandboxRecord) -> str:
    return (
        row.data.get("companyName")
        or row.data.get("name")
        or row.data.get("entityId")
        or str(row.pk)
    )


def closed_period_check(*, tran_date: str, subsidiary: str | None) -> None:
    """Refuse a date in a period closed for the transaction's subsidiary (or for all)."""
    for period in closed_periods_covering(tran_date):
        scope = period.get("subsidiary")
        if period.get("closed") is True and (scope is None or scope == subsidiary):
            raise user_error(
                f"The accounting period {period.get('periodName')} is closed: you cannot post "
                f"a transaction dated {tran_date} to a closed period.",
                "tranDate",
            )


def _customer_active_check(customer: SandboxRecord, path: str) -> None:
    if customer.data.get("isInactive"):
        raise user_error(f"The customer {_name(customer)} is inactive.", path)


def _project_open_check(job: SandboxRecord, path: str) -> None:
    if job.data.get("entityStatus") == JOB_STATUS_CLOSED or job.data.get("isInactive"):
        raise user_error(f"The project {_name(job)} is closed: no new transactions.", path)


def customer_or_project_check(reference: str | None, path: str) -> SandboxRecord | None:
    """The customer behind a Customer:Project value, checking it is active and the project open."""
    if not reference:
        return None
    row = record_find(reference, "job", "customer")
    if row is None:
        raise invalid_value(reference, path)
    if row.object_type == "job":
        _project_open_check(row, path)
        parent = record_find(row.data.get("parent"), "customer")
        if parent is not None:
            _customer_active_check(parent, path)
        return parent
    _customer_active_check(row, path)
    return row


def _mismatch(what: str, given: SandboxRecord | None, expected: str, owner: str, path: str):
    shown = given.data.get("symbol") or given.data.get("name") if given else "?"
    return user_error(
        f"The {what} {shown} does not match the {what} of {owner} (internal id {expected}).", path
    )


def _same(data: dict, name: str, expected: str | None, owner: str) -> None:
    """Default data[name] to `expected`, or refuse a different value."""
    if not expected:
        return
    if data.get(name) is None:
        data[name] = expected
    elif data[name] != expected:
        given = record_find(data[name], "subsidiary", "currency")
        raise _mismatch(name, given, expected, owner, name)


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def record_prepare(
    *, spec: RecordSpec, data: dict[str, Any], record_id: int | None = None
) -> dict[str, Any]:
    """The record's data with sourced defaults and derived totals, or a NetSuite 400."""
    data = {k: v for k, v in data.items() if v is not None}
    prepare = _PREPARE.get(spec.name)
    if prepare is not None:
        prepare(data, record_id)
    required_check(spec=spec, data=data)
    if spec.in_closed_period_check and data.get("tranDate"):
        closed_period_check(tran_date=data["tranDate"], subsidiary=data.get("subsidiary"))
    return data


def _customer(data: dict, _record_id: int | None) -> None:
    if data.get("currency") is None and data.get("subsidiary"):
        subsidiary = record_find(data["subsidiary"], "subsidiary")
        if subsidiary is not None:
            data["currency"] = subsidiary.data.get("currency")


def _job(data: dict, _record_id: int | None) -> None:
    data.setdefault("entityStatus", "2")
    parent = record_find(data.get("parent"), "customer")
    if parent is None:
        return
    if data.get("entityStatus") != JOB_STATUS_CLOSED:
        _customer_active_check(parent, "parent")
    owner = f"customer {_name(parent)}"
    _same(data, "subsidiary", parent.data.get("subsidiary"), owner)
    _same(data, "currency", parent.data.get("currency"), owner)


def _project_task(data: dict, _record_id: int | None) -> None:
    data.setdefault("status", "NOTSTART")
    job = record_find(data.get("company"), "job")
    if job is not None:
        _project_open_check(job, "company")


def _employee_defaults(data: dict, employee_field: str) -> SandboxRecord | None:
    employee = record_find(data.get(employee_field), "employee")
    if employee is None:
        return None
    if data.get("department") is None and employee.data.get("department"):
        data["department"] = employee.data["department"]
    _same(data, "subsidiary", employee.data.get("subsidiary"), f"employee {_name(employee)}")
    return employee


def _time_bill(data: dict, _record_id: int | None) -> None:
    data.setdefault("approvalStatus", "1")
    _employee_defaults(data, "employee")
    customer_or_project_check(data.get("customer"), "customer")
    task_id = data.get("caseTaskEvent")
    if task_id:
        task = record_find(task_id, "projectTask")
        if task is None or task.data.get("company") != data.get("customer"):
            raise invalid_value(task_id, "caseTaskEvent")
    hours = data.get("hours")
    if hours is not None and not 0 < hours <= 24:
        raise invalid_value(hours, "hours")
    if data.get("department") is None and data.get("employee"):
        raise required_missing("department", "department")


def _expense_report(data: dict, _record_id: int | None) -> None:
    data.setdefault("approvalStatus", "1")
    _employee_defaults(data, "entity")
    subsidiary = record_find(data.get("subsidiary"), "subsidiary")
    if subsidiary is not None:
        _same(data, "currency", subsidiary.data.get("currency"), f"subsidiary {_name(subsidiary)}")
    if data.get("department") is None and data.get("entity"):
        raise required_missing("department", "department")
    total = Decimal(0)
    for index, line in enumerate(data.get("expense") or []):
        customer_or_project_check(line.get("customer"), f"expense.items[{index}].customer")
        total += _money(line.get("amount"))
    data["total"] = _number(total)


def _invoice(data: dict, record_id: int | None) -> None:
    customer = record_find(data.get("entity"), "customer")
    if customer is not None:
        _customer_active_check(customer, "entity")
        owner = f"customer {_name(customer)}"
        _same(data, "subsidiary", customer.data.get("subsidiary"), owner)
        _same(data, "currency", customer.data.get("currency"), owner)
    if data.get("job"):
        job = record_find(data["job"], "job")
        if job is None or job.data.get("parent") != data.get("entity"):
            raise invalid_value(data["job"], "job")
        _project_open_check(job, "job")
    total = sum((_money(line.get("amount")) for line in data.get("item") or []), Decimal(0))
    previous_total = _money(data.get("total"))
    paid = previous_total - _money(data.get("amountRemaining", previous_total))
    data["total"] = _number(total)
    data["amountRemaining"] = _number(total - paid)
    if data.get("status") != "V":
        data["status"] = "B" if total - paid <= 0 and total > 0 else "A"
    if record_id is not None:
        data.setdefault("tranId", f"INV{record_id}")


def _customer_payment(data: dict, record_id: int | None) -> None:
    customer = record_find(data.get("customer"), "customer")
    if customer is not None:
        owner = f"customer {_name(customer)}"
        _same(data, "subsidiary", customer.data.get("subsidiary"), owner)
        _same(data, "currency", customer.data.get("currency"), owner)
    if record_id is not None:
        return  # applied when created (services refuse to change `apply` afterwards)
    applied = Decimal(0)
    for index, line in enumerate(data.get("apply") or []):
        path = f"apply.items[{index}]"
        invoice = record_find(line.get("doc"), "invoice")
        if invoice is None or invoice.data.get("entity") != data.get("customer"):
            raise invalid_value(line.get("doc"), f"{path}.doc")
        if line.get("apply", True) is False:
            continue
        amount = _money(line.get("amount"))
        if amount <= 0 or amount > _money(invoice.data.get("amountRemaining")):
            raise user_error(
                f"The amount applied to invoice {invoice.data.get('tranId')} exceeds the amount "
                "remaining.",
                f"{path}.amount",
            )
        applied += amount
    if applied > _money(data.get("payment")):
        raise user_error("The total applied exceeds the payment amount.", "payment")


_PREPARE = {
    "customer": _customer,
    "job": _job,
    "projectTask": _project_task,
    "timeBill": _time_bill,
    "expenseReport": _expense_report,
    "invoice": _invoice,
    "customerPayment": _customer_payment,
}
