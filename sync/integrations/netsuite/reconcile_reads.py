"""What reconciliation reads from NetSuite through SuiteQL: time bills, expense reports,
invoices, employees, jobs and currencies as the ERP holds them now (read-only; one table a
query, as SuiteQL connectors here do). Rows are yielded page by page, each a plain dict of the
columns below, values as SuiteQL renders them (text; booleans "T"/"F"; dates through TO_CHAR
as "YYYY-MM-DD")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sync.integrations.netsuite.client import NetSuiteConnector

ISO_DATE = "YYYY-MM-DD"
REJECTED = "3"  # timeBill approvalStatus "Rejected"


def _date(value: dt.date) -> str:
    return f"TO_DATE('{value.isoformat()}', '{ISO_DATE}')"


def _dated(query: str, *, date_from: dt.date | None, date_to: dt.date | None) -> str:
    """`query` limited to trandate within [date_from, date_to] (either open), in id order."""
    conditions = []
    if date_from is not None:
        conditions.append(f"trandate >= {_date(date_from)}")
    if date_to is not None:
        conditions.append(f"trandate <= {_date(date_to)}")
    if conditions:
        query += " WHERE " + " AND ".join(conditions)
    return query + " ORDER BY id"


def time_bills_pages(
    connector: NetSuiteConnector, *, date_from: dt.date | None, date_to: dt.date | None
) -> Iterator[list[dict[str, Any]]]:
    """Every timeBill dated within [date_from, date_to] (either open), in id order: id,
    externalid, employee, customer (the job), casetaskevent, trandate (ISO), hours, rate,
    approvalstatus."""
    query = (
        "SELECT id, externalid, employee, customer, casetaskevent, "  # noqa: S608 - constants
        f"TO_CHAR(trandate, '{ISO_DATE}') AS trandate, hours, rate, approvalstatus FROM timeBill"
    )
    for page in connector.suiteql(_dated(query, date_from=date_from, date_to=date_to)):
        yield page.records


def employees_pages(connector: NetSuiteConnector) -> Iterator[list[dict[str, Any]]]:
    """Every employee: id, externalid (the HR employee number), email, isinactive ("T"/"F")."""
    for page in connector.suiteql(
        "SELECT id, externalid, email, isinactive FROM employee ORDER BY id"
    ):
        yield page.records


def jobs_currency(connector: NetSuiteConnector) -> dict[str, tuple[str, str]]:
    """{job id: (its externalid — our project code, its currency's ISO code)}."""
    symbols = {
        str(row["id"]): str(row.get("symbol") or "")
        for page in connector.suiteql("SELECT id, symbol FROM currency ORDER BY id")
        for row in page.records
    }
    return {
        str(row["id"]): (
            str(row.get("externalid") or ""),
            symbols.get(str(row.get("currency") or ""), ""),
        )
        for page in connector.suiteql("SELECT id, externalid, currency FROM job ORDER BY id")
        for row in page.records
    }


def expense_reports_pages(
    connector: NetSuiteConnector, *, date_from: dt.date | None, date_to: dt.date | None
) -> Iterator[list[dict[str, Any]]]:
    """Every expenseReport dated within [date_from, date_to] (either open), in id order: id,
    externalid (`KT-EX-<PSA id>` when Ledgerbridge or the firm posted it under our key),
    entity (the employee), currency (internal id), trandate (ISO), total, approvalstatus."""
    query = (
        "SELECT id, externalid, entity, currency, "  # noqa: S608 - constants
        f"TO_CHAR(trandate, '{ISO_DATE}') AS trandate, total, approvalstatus FROM expenseReport"
    )
    for page in connector.suiteql(_dated(query, date_from=date_from, date_to=date_to)):
        yield page.records


def invoices_pages(
    connector: NetSuiteConnector, *, date_from: dt.date | None, date_to: dt.date | None
) -> Iterator[list[dict[str, Any]]]:
    """Every invoice dated within [date_from, date_to] (either open), in id order: id,
    externalid (the billing invoice number), otherrefnum (the number as a person keys it in),
    job, currency (internal id), trandate (ISO), total, amountremaining, status (A open,
    B paid in full, V voided)."""
    query = (
        "SELECT id, externalid, otherrefnum, job, currency, "  # noqa: S608 - constants
        f"TO_CHAR(trandate, '{ISO_DATE}') AS trandate, total, amountremaining, status "
        "FROM invoice"
    )
    for page in connector.suiteql(_dated(query, date_from=date_from, date_to=date_to)):
        yield page.records


def currencies(connector: NetSuiteConnector) -> dict[str, str]:
    """{currency internal id: its ISO code (the currency's symbol)}."""
    return {
        str(row["id"]): str(row.get("symbol") or "")
        for page in connector.suiteql("SELECT id, symbol FROM currency ORDER BY id")
        for row in page.records
    }
