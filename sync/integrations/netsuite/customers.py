"""NetSuite customer, job (project) and projectTask bodies: what onboarding and project
provisioning upsert, by external id, through the NetSuite REST record service.

References are `time_bills.record_ref`: the internal id when Ledgerbridge knows it, else the
external id (NetSuite resolves `{"externalId": …}` references itself).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

CUSTOMER = "customer"
JOB = "job"
PROJECT_TASK = "projectTask"
# entityStatus of a job Ledgerbridge provisions: "Awarded" (won, not started; takes time).
JOB_AWARDED = "5"


def customer_body(
    *,
    external_id: str,
    name: str,
    subsidiary: str,
    currency: str | None,
    tax_registration: str,
    account_number: str,
) -> dict[str, Any]:
    """The body of the ERP customer onboarded from a CRM account."""
    return {
        "externalId": external_id,
        "companyName": name,
        "entityId": account_number or None,
        "subsidiary": {"id": subsidiary},
        "currency": {"id": currency} if currency else None,
        "vatRegNumber": tax_registration or None,
        "isInactive": False,
    }


def job_body(
    *,
    code: str,
    name: str,
    customer: dict[str, str],
    subsidiary: str,
    currency: str | None,
    start: dt.date | None,
    end: dt.date | None,
) -> dict[str, Any]:
    """The body of the ERP job (project) under its customer; its external id is the project
    code, which the PSA workspace carries as `external_reference`."""
    return {
        "externalId": code,
        "entityId": code,
        "companyName": name,
        "parent": customer,
        "subsidiary": {"id": subsidiary},
        "currency": {"id": currency} if currency else None,
        "entityStatus": JOB_AWARDED,
        "startDate": start.isoformat() if start else None,
        "projectedEndDate": end.isoformat() if end else None,
        "isInactive": False,
    }


def project_task_body(
    *, code: str, title: str, job: dict[str, str], parent: dict[str, str] | None
) -> dict[str, Any]:
    """The body of one WBS element (projectTask) of a job; external id = the WBS code."""
    return {
        "externalId": code,
        "title": title,
        "company": job,
        "parent": parent,
        "status": "NOTSTART",
    }
