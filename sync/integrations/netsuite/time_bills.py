"""NetSuite timeBill records: the key and body Ledgerbridge upserts them with, and the SuiteQL
rows it reads back (what the ERP already holds under our key)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sync.errors import PayloadError

RECORD_TYPE = "timeBill"  # NetSuite's record type; also the inbox entity the cycle pulls it as
# Our external id of the bill posting PSA time entry <id>: keyed by the PSA's own id, not ours,
# so it is stable across rebuilds and the same key the ERP holds for time posted before
# Ledgerbridge, which is therefore never posted twice.
KEY_PREFIX = "KT-TE-"
# The SuiteQL columns `time_bill_read` reads (the connector adds the change marker).
COLUMNS: tuple[str, ...] = ("id", "externalid")
# Body fields sent as JSON numbers (the outbox keeps them as exact decimal strings).
NUMERIC_FIELDS = frozenset({"hours", "rate"})
MAX_TEXT = 255  # TargetRecord.external_id / target_id


def time_bill_key(psa_id: str) -> str:
    """The external id the bill of PSA time entry `psa_id` is upserted under."""
    return f"{KEY_PREFIX}{psa_id}"


def record_ref(*, internal_id: str | None, external_id: str) -> dict[str, str]:
    """A NetSuite record reference: its internal id when we know it, else its external id."""
    return {"id": internal_id} if internal_id else {"externalId": external_id}


def time_bill_body(
    *,
    psa_id: str,
    work_date: dt.date,
    hours: Decimal,
    billable: bool,
    bill_rate: Decimal,
    subsidiary: str | None,
    employee: dict[str, str],
    customer: dict[str, str],
    task: dict[str, str],
    department: str | None,
) -> dict[str, Any]:
    """The REST body of the timeBill posting one PSA time entry (references by `record_ref`)."""
    return {
        "externalId": time_bill_key(psa_id),
        "tranDate": work_date.isoformat(),
        "hours": str(hours),
        "isBillable": billable,
        "rate": str(bill_rate),
        "subsidiary": {"id": subsidiary},
        "employee": employee,
        "customer": customer,
        "caseTaskEvent": task,
        # Without a known ERP department the ERP takes the employee's own (NetSuite sources it).
        "department": {"id": department} if department else None,
        "memo": f"PSA time entry {psa_id}",
    }


@dataclass(frozen=True)
class TimeBill:
    internal_id: str
    external_id: str | None  # None: not posted under a key (entered in the ERP itself)


def time_bill_read(payload: Any) -> TimeBill:
    """Read a SuiteQL timeBill row strictly. Raises PayloadError naming every problem."""
    if not isinstance(payload, dict):
        raise PayloadError("The timeBill payload is not a JSON object.")
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
    return TimeBill(internal_id=str(internal_id), external_id=external_id)
