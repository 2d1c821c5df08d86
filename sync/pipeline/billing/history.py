"""Billing invoices pulled into the inbox → which project months billing has billed already.

The firm billed its projects before Ledgerbridge: its Stripe invoices name the project and the
month they bill (`metadata.project_key`, `metadata.period`). The (billing, invoices) flow
records each such month as a TargetRecord of the billing connection (`billedPeriod`,
`<project code>/<YYYY-MM>` → the invoice id), and candidate building links the month's work
to it instead of billing it again (decision 106). Invoices Ledgerbridge issued itself
(`LB-IC-…`) and invoices naming no project month are passed over.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sync.integrations.stripe.invoices import (
    BILLED_PERIOD,
    KEY_PREFIX,
    BilledInvoice,
    billed_invoice_read,
    billed_period_key,
)
from sync.pipeline.billing.flow import billing_connection_get
from sync.pipeline.models import SyncRun, TargetRecord
from sync.pipeline.models.connections import System
from sync.pipeline.models.exception_items import Queue
from sync.pipeline.processing import Batch, Flow, Item, ProcessCounts, batch_process
from sync.pipeline.target_records import target_records_known, target_records_upsert

ENTITY = "invoices"
VOID = "void"


def billed_invoices_process(
    *, inbox_ids: Sequence[int], run: SyncRun, now: dt.datetime | None = None
) -> ProcessCounts:
    """Process pending (billing, invoices) inbox items as one batch (sync.pipeline.processing).
    Idempotent: the same invoices again write nothing. One transaction: a database error
    leaves the items pending."""
    return batch_process(flow=FLOW, inbox_ids=inbox_ids, run=run, now=now)


def _write(records: list[tuple[Item, BilledInvoice]], batch: Batch) -> None:
    counts = batch.counts
    unbound = any(item.connection_id is None for item, _ in records)
    fallback = billing_connection_get() if unbound else None
    by_connection: dict[int, dict[str, str]] = {}
    for item, invoice in records:
        connection_id = item.connection_id or (fallback.pk if fallback is not None else None)
        if connection_id is None:
            batch.fail(
                item,
                invoice.invoice_id,
                code="CONNECTION_UNKNOWN",
                queue=Queue.INTEGRATION_OPS,
                category="configuration",
                message="A billing invoice reached the inbox without its connection, and no "
                "billing connection is enabled to hold it.",
                suggested_fix="Enable the billing connection, then replay.",
            )
            continue
        batch.passed.append(batch.record_key(invoice.invoice_id))
        ours = (invoice.ledgerbridge_id or "").startswith(KEY_PREFIX)
        if ours or invoice.status == VOID or not (invoice.project_key and invoice.period):
            counts.unchanged += 1
            continue
        key = billed_period_key(invoice.project_key, invoice.period)
        by_connection.setdefault(connection_id, {}).setdefault(key, invoice.invoice_id)
    for connection_id, known in by_connection.items():
        stored = target_records_known(
            connection=connection_id, record_type=BILLED_PERIOD, external_ids=known
        )
        changed = {key: target for key, target in known.items() if key not in stored}
        counts.unchanged += len(known) - len(changed)
        counts.created += len(changed)
        # A month keeps the first invoice that billed it (a second one for the same month is
        # a correction or a top-up the firm made itself: the month is billed either way).
        target_records_upsert(
            connection=connection_id,
            record_type=BILLED_PERIOD,
            known=changed,
            source=TargetRecord.Source.PULLED,
            now=batch.now,
        )


FLOW = Flow(
    system=System.BILLING.value,
    entity=ENTITY,
    record="invoice",
    read=billed_invoice_read,
    write=_write,
    what="a billing invoice",
    fix="Check the invoice in billing (or a schema change on the billing side), then replay.",
    identity=None,  # `_write` keeps one invoice per month
)
