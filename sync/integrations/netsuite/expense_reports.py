"""NetSuite expenseReport records: the key and body Ledgerbridge upserts them with, and the
SuiteQL rows it reads back (what the ERP already holds under our key).

One report per PSA expense, one expense line, keyed `KT-EX-<PSA expense id>`: the key the
firm's ERP already holds for expenses posted before Ledgerbridge, so they are never doubled.
A rejected expense is voided by upserting the same report with `approvalStatus` Rejected: the
ERP keeps the report (its audit trail) and a rejected report posts nothing to the ledger
(docs/decisions.md #91).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sync.errors import PayloadError

RECORD_TYPE = "expenseReport"  # NetSuite's record type; also the inbox entity it is pulled as
KEY_PREFIX = "KT-EX-"
# NetSuite's approvalStatus list: 1 Pending Approval, 2 Approved, 3 Rejected.
APPROVED = "2"
REJECTED = "3"
# The SuiteQL columns `expense_report_read` reads (the connector adds the change marker).
COLUMNS: tuple[str, ...] = ("id", "externalid")
MAX_TEXT = 255  # TargetRecord.external_id / target_id


def expense_report_key(psa_id: str) -> str:
    """The external id the report of PSA expense `psa_id` is upserted under."""
    return f"{KEY_PREFIX}{psa_id}"


def expense_report_body(
    *,
    psa_id: str,
    incurred_date: dt.date,
    amount: Decimal,
    billable: bool,
    category: str,
    subsidiary: str | None,
    currency: str | None,
    employee: dict[str, str],
    customer: dict[str, str],
    department: str | None,
    rejected: bool = False,
) -> dict[str, Any]:
    """The REST body of the expense report posting one PSA expense (references as
    `time_bills.record_ref` gives them; `currency` the ERP currency's internal id, when known).

    The line amount is an exact decimal string (the outbox keeps JSON; a float would round).
    """
    department_ref = {"id": department} if department else None
    return {
        "externalId": expense_report_key(psa_id),
        "tranDate": incurred_date.isoformat(),
        "entity": employee,
        "subsidiary": {"id": subsidiary},
        # Without a known ERP currency id the ERP takes the subsidiary's (NetSuite sources it).
        "currency": {"id": currency} if currency else None,
        # Without a known ERP department the ERP takes the employee's own (NetSuite sources it).
        "department": department_ref,
        "approvalStatus": {"id": REJECTED if rejected else APPROVED},
        "memo": f"Kantata expense {psa_id}",
        "expense": {
            "items": [
                {
                    "expenseDate": incurred_date.isoformat(),
                    "category": category,
                    "amount": str(amount),
                    "customer": customer,
                    "department": department_ref,
                    "isBillable": billable,
                    "memo": category,
                }
            ]
        },
    }


@dataclass(frozen=True)
class ExpenseReport:
    internal_id: str
    external_id: str | None  # None: not posted under a key (entered in the ERP itself)


def expense_report_read(payload: Any) -> ExpenseReport:
    """Read a SuiteQL expenseReport row strictly. Raises PayloadError naming every problem."""
    if not isinstance(payload, dict):
        raise PayloadError("The expenseReport payload is not a JSON object.")
    errors: list[str] = []
    internal_id = payload.get("id")
    if (
        isinstance(internal_id, bool)
        or not isinstance(internal_id, str | int)
        or not (str(internal_id).isdigit() and len(str(internal_id)) <= MAX_TEXT)
    ):
        errors.append(
            f"`id` must be NetSuite's internal id (digits), got {str(internal_id)[:40]!r}."
        )
    external_id = payload.get("externalid")
    if external_id == "":
        external_id = None
    if external_id is not None and not isinstance(external_id, str):
        errors.append(f"`externalid` must be text, got {type(external_id).__name__}.")
    elif external_id is not None and len(external_id) > MAX_TEXT:
        errors.append(f"`externalid` is {len(external_id)} characters long; at most {MAX_TEXT}.")
    if errors:
        raise PayloadError(" ".join(errors))
    return ExpenseReport(internal_id=str(internal_id), external_id=external_id)
