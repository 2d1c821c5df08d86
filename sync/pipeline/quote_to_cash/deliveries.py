"""The outbox rows the quote-to-cash flows write: one operation per target write, each keyed
so that a second cycle, a replay or a retry enqueues nothing new.

Keys (`Delivery.idempotency_key`, unique):
- `erp:erp.customer.upsert:<customer>:v<version>`  ERP customer, external id = the account key
- `crm:crm.account.link:<customer>:<ERP id>`       CRM account's ERP_Customer_Id__c
- `billing:billing.customer.create:<customer>`     billing customer (Stripe, Idempotency-Key)
- `erp:erp.job.upsert:<project>:v<version>`        ERP job, external id = the project code
- `erp:erp.project_task.upsert:<task>:v<version>`  its WBS, external id = the task code
- `psa:psa.workspace.upsert:<project>:v<version>`  PSA workspace, external_reference = the code
- `psa:psa.story.upsert:<task>:v<version>`         its WBS stories, external_reference = task code
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from sync.pipeline.models import Connection, Delivery
from sync.pipeline.models.connections import System

CUSTOMER_UPSERT = "erp.customer.upsert"
ACCOUNT_LINK = "crm.account.link"
BILLING_CUSTOMER = "billing.customer.create"
JOB_UPSERT = "erp.job.upsert"
TASK_UPSERT = "erp.project_task.upsert"
WORKSPACE_UPSERT = "psa.workspace.upsert"
STORY_UPSERT = "psa.story.upsert"


def connection_for(system: str) -> Connection | None:
    """The enabled connection of `system` deliveries go to (the first, if several)."""
    return Connection.objects.filter(enabled=True, system=system).order_by("id").first()


def connections_load() -> dict[str, Connection]:
    """The enabled delivery target of each system that has one (one query)."""
    found: dict[str, Connection] = {}
    for connection in Connection.objects.filter(
        enabled=True, system__in=[System.ERP, System.CRM, System.BILLING, System.PSA]
    ).order_by("-id"):
        found[connection.system] = connection
    return found


def delivery_build(
    *,
    connection: Connection,
    operation: str,
    record: models.Model,
    key: str,
    external_id: str,
    record_type: str,
    body: dict[str, Any],
    correlation_id: str,
    now: dt.datetime,
    amount: Decimal | None = None,
    currency: str = "",
) -> Delivery:
    """One outbox row for `record` (its content type and version), idempotency key
    `<system>:<operation>:<key>`. `amount`/`currency`: the money at risk if it fails."""
    payload: dict[str, Any] = {"record_type": record_type, "body": body}
    if amount is not None:
        payload.update(amount=str(amount), currency=currency)
    return Delivery(
        connection=connection,
        operation=operation,
        content_type=ContentType.objects.get_for_model(type(record)),
        object_id=str(record.pk),
        record_version=getattr(record, "version", 1),
        idempotency_key=f"{connection.system}:{operation}:{key}",
        external_id=external_id,
        payload=payload,
        correlation_id=correlation_id or getattr(record, "correlation_id", ""),
        next_attempt_at=now,
    )
