"""The manifest: every planted fault, as a correct reconciliation or sync must find it.

Pure: built from the firm, the id book and what the stream and billing left behind. The JSON is
deterministic (sorted, no wall-clock values), so the same seed writes the same file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

from sandbox.generator import kantata, netsuite, salesforce, scim
from sandbox.generator.activity import Activity
from sandbox.generator.billing import Billing
from sandbox.generator.firm import ENTITY_BY_CODE, Customer, Firm
from sandbox.generator.writer import IdBook
from sandbox.salesforce.schema import ACCOUNT, sf_id
from sandbox.scim.schema import scim_id

FORMAT_VERSION = 1

FAULT_KINDS: dict[str, str] = {
    "closed_period": "approved PSA time dated in a closed ERP accounting period, not posted",
    "invalid_task": "approved PSA time on a task that is complete in the ERP (booked after its "
    "end) or that exists only in the PSA",
    "role_placeholder": "approved PSA time booked by a role placeholder (no HR worker, no ERP "
    "employee)",
    "worker_missing_cost_centre": "HR worker without a cost centre; their approved time cannot "
    "be costed in the ERP (money: that time, not posted)",
    "project_legal_entity_unmapped": "PSA workspace whose legal entity has no ERP subsidiary; "
    "nothing of it is in the ERP (money: its approved time)",
    "duplicate_customer": "two customer records for one company (same tax id, names equal but "
    "for case, spaces and punctuation); money: what was invoiced to the customer",
    "customer_missing_tax_data": "customer without a tax registration; money: what was "
    "invoiced to the customer",
    "unbilled_approved_time": "approved billable T&M time of a completed month with no invoice "
    "(leakage); one entry per project and month",
    "milestone_completed_not_invoiced": "fixed-fee milestone completed in the PSA, never invoiced",
}


def _money(cents: int | None, currency: str) -> dict[str, str] | None:
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    return {"amount": f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}", "currency": currency}


def _entry(kind, system, object_type, records, cents, currency, **detail) -> dict[str, Any]:
    return {
        "kind": kind,
        "system": system,
        "object_type": object_type,
        "records": records,
        "money_at_risk": _money(cents, currency),
        "detail": detail,
    }


def _kt(record_id: int, external_id: str | None = None) -> dict[str, Any]:
    return {"id": str(record_id), "record_id": record_id, "external_id": external_id}


def manifest_build(
    *,
    firm: Firm,
    book: IdBook,
    activity: Activity,
    billing: Billing,
    scale: str,
    written: dict[tuple[str, str], int],
) -> dict[str, Any]:
    faults: list[dict[str, Any]] = []
    for fault in activity.faults:
        faults.append(
            _entry(
                fault.kind,
                kantata.SYSTEM,
                kantata.TIME_ENTRIES,
                [_kt(fault.time_entry_id)],
                fault.value_cents,
                fault.project.currency,
                workspace_id=str(book[kantata.SYSTEM, kantata.WORKSPACES, fault.project.key]),
                project_key=fault.project.key,
                date=fault.day.isoformat(),
                user_id=str(fault.user_id),
                reason=fault.reason,
            )
        )
    for worker in firm.workers:
        if worker.cost_centre is None:
            entries, cents = activity.no_cost_centre.get(worker.index, [0, 0])
            pk = book[scim.SYSTEM, "User", worker.key]
            faults.append(
                _entry(
                    "worker_missing_cost_centre",
                    scim.SYSTEM,
                    "User",
                    [{"id": scim_id(pk), "record_id": pk, "external_id": worker.key}],
                    cents,
                    ENTITY_BY_CODE[worker.entity].currency,
                    kantata_user_id=str(book[kantata.SYSTEM, kantata.USERS, worker.key]),
                    unposted_time_entries=entries,
                )
            )
    for project in firm.projects:
        if not ENTITY_BY_CODE[project.entity].erp_mapped:
            entries, cents = activity.unmapped.get(project.index, [0, 0])
            pk = book[kantata.SYSTEM, kantata.WORKSPACES, project.key]
            faults.append(
                _entry(
                    "project_legal_entity_unmapped",
                    kantata.SYSTEM,
                    kantata.WORKSPACES,
                    [_kt(pk, project.key)],
                    cents,
                    project.currency,
                    legal_entity=project.entity,
                    approved_time_entries=entries,
                )
            )
    for customer in firm.customers:
        faults.extend(_customer_faults(book, billing, customer))
    for (project_index, period), (ids, cents) in sorted(activity.leaked.items()):
        project = firm.projects[project_index]
        faults.append(
            _entry(
                "unbilled_approved_time",
                kantata.SYSTEM,
                kantata.TIME_ENTRIES,
                [_kt(i) for i in ids],
                cents[0],
                project.currency,
                workspace_id=str(book[kantata.SYSTEM, kantata.WORKSPACES, project.key]),
                project_key=project.key,
                period=period,
            )
        )
    for project in firm.projects:
        for milestone in project.milestones:
            if milestone.completed and not milestone.invoiced:
                pk = book[kantata.SYSTEM, kantata.STORIES, milestone.key]
                faults.append(
                    _entry(
                        "milestone_completed_not_invoiced",
                        kantata.SYSTEM,
                        kantata.STORIES,
                        [_kt(pk, milestone.key)],
                        milestone.amount_cents,
                        project.currency,
                        workspace_id=str(book[kantata.SYSTEM, kantata.WORKSPACES, project.key]),
                        project_key=project.key,
                        due_date=milestone.due.isoformat(),
                    )
                )
    faults.sort(
        key=lambda f: (f["kind"], f["system"], f["object_type"], f["records"][0]["record_id"])
    )
    counts: dict[str, dict[str, int]] = {}
    for fault in faults:
        tally = counts.setdefault(fault["kind"], {"entries": 0, "records": 0})
        tally["entries"] += 1
        tally["records"] += len(fault["records"])
    records: dict[str, dict[str, int]] = {}
    for (system, object_type), count in sorted(written.items()):
        records.setdefault(system, {})[object_type] = count
    return {
        "format": FORMAT_VERSION,
        "seed": firm.seed,
        "scale": scale,
        "time_entries": firm.time_entries,
        "as_of": firm.as_of.isoformat(),
        "now": firm.now.isoformat(),
        "history_from": firm.horizon_start.isoformat(),
        "closed_through": _closed_through(firm).isoformat(),
        "backlog_from": firm.backlog_start.isoformat(),
        "legal_entities": [
            {
                "code": e.code,
                "name": e.name,
                "country": e.country,
                "currency": e.currency,
                "erp_mapped": e.erp_mapped,
            }
            for e in firm.entities
        ],
        "records": records,
        "fault_kinds": FAULT_KINDS,
        "fault_counts": counts,
        "faults": faults,
    }


def _closed_through(firm: Firm) -> dt.date:
    closed = [p.end for p in firm.periods if p.closed]
    return max(closed) if closed else firm.horizon_start


def _customer_faults(book: IdBook, billing: Billing, customer: Customer) -> list[dict]:
    out = []
    invoiced = billing.invoiced_by_customer.get(customer.key, 0)
    account = book[salesforce.SYSTEM, ACCOUNT.name, customer.key]
    ns_customer = book.get(netsuite.SYSTEM, "customer", customer.key)
    if customer.crm_duplicate:
        duplicate = book[salesforce.SYSTEM, ACCOUNT.name, salesforce.duplicate_key(customer)]
        out.append(
            _entry(
                "duplicate_customer",
                salesforce.SYSTEM,
                ACCOUNT.name,
                [
                    {"id": sf_id(ACCOUNT, account), "record_id": account, "external_id": None},
                    {"id": sf_id(ACCOUNT, duplicate), "record_id": duplicate, "external_id": None},
                ],
                invoiced,
                customer.currency,
                customer_key=customer.key,
                name=customer.name,
            )
        )
    if customer.erp_duplicate and ns_customer is not None:
        duplicate = book[netsuite.SYSTEM, "customer", netsuite.duplicate_key(customer)]
        out.append(
            _entry(
                "duplicate_customer",
                netsuite.SYSTEM,
                "customer",
                [
                    {"id": str(ns_customer), "record_id": ns_customer, "external_id": customer.key},
                    {"id": str(duplicate), "record_id": duplicate, "external_id": None},
                ],
                invoiced,
                customer.currency,
                customer_key=customer.key,
                name=customer.name,
            )
        )
    if customer.tax_id is None:
        out.append(
            _entry(
                "customer_missing_tax_data",
                salesforce.SYSTEM,
                ACCOUNT.name,
                [{"id": sf_id(ACCOUNT, account), "record_id": account, "external_id": None}],
                invoiced,
                customer.currency,
                customer_key=customer.key,
                field="Tax_Registration__c",
            )
        )
        if ns_customer is not None:
            out.append(
                _entry(
                    "customer_missing_tax_data",
                    netsuite.SYSTEM,
                    "customer",
                    [
                        {
                            "id": str(ns_customer),
                            "record_id": ns_customer,
                            "external_id": customer.key,
                        }
                    ],
                    invoiced,
                    customer.currency,
                    customer_key=customer.key,
                    field="vatRegNumber",
                )
            )
    return out


def manifest_write(*, manifest: dict[str, Any], path: Path) -> None:
    """Write the manifest atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(
        orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    )
    partial.replace(path)
