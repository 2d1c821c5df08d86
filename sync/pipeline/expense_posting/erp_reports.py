"""ERP expense reports pulled into the inbox → TargetRecords: which `KT-EX-<id>` keys the ERP
already holds, so expense posting links them instead of posting them again.

The firm's ERP holds expense reports keyed `KT-EX-<PSA expense id>` for expenses posted before
Ledgerbridge; most lie in closed periods, where posting them again would be refused (and, with
another key, doubled). The (erp, expenseReport) inbox flow records each keyed report as a
TargetRecord of its connection (source "pulled"); expense posting reads them
(`target_records_known`) before it creates an expense.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sync.integrations.netsuite import expense_reports
from sync.integrations.netsuite.expense_reports import ExpenseReport, expense_report_read
from sync.pipeline.connection_services import erp_connection_get
from sync.pipeline.models import SyncRun, TargetRecord
from sync.pipeline.models.exception_items import Queue
from sync.pipeline.processing import Batch, Flow, Item, ProcessCounts, batch_process
from sync.pipeline.target_records import target_records_known, target_records_upsert

SYSTEM = "erp"


def expense_reports_process(
    *, inbox_ids: Sequence[int], run: SyncRun, now: dt.datetime | None = None
) -> ProcessCounts:
    """Process pending ERP expenseReport inbox items as one batch (sync.pipeline.processing):
    every report with an externalId becomes (or refreshes) a TargetRecord of its connection (an
    item stored without one belongs to the enabled ERP connection; none enabled: the item is
    parked, CONNECTION_UNKNOWN). Reports without an externalId are not ours to track.

    Idempotent: the same rows again write nothing. Three queries and one upsert per batch and
    connection. One transaction: a database error leaves the items pending.
    """
    return batch_process(flow=FLOW, inbox_ids=inbox_ids, run=run, now=now)


def _reports_write(records: list[tuple[Item, ExpenseReport]], batch: Batch) -> None:
    counts = batch.counts
    erp = erp_connection_get() if any(i.connection_id is None for i, _ in records) else None
    by_connection: dict[int, dict[str, str]] = {}
    for item, report in records:
        connection_id = item.connection_id or (erp.pk if erp is not None else None)
        if connection_id is None:
            batch.fail(
                item,
                report.internal_id,
                code="CONNECTION_UNKNOWN",
                queue=Queue.INTEGRATION_OPS,
                category="configuration",
                message="An ERP expenseReport reached the inbox without its connection, and no "
                "ERP connection is enabled to hold it.",
                suggested_fix="Enable the ERP connection, then replay.",
            )
            continue
        batch.passed.append(batch.record_key(report.internal_id))
        if report.external_id is None:
            counts.unchanged += 1
            continue
        # Should two rows of a batch claim one key, the later wins (one ERP record per key).
        by_connection.setdefault(connection_id, {})[report.external_id] = report.internal_id
    for connection_id, known in by_connection.items():
        stored = target_records_known(
            connection=connection_id, record_type=expense_reports.RECORD_TYPE, external_ids=known
        )
        changed = {key: target for key, target in known.items() if stored.get(key) != target}
        counts.unchanged += len(known) - len(changed)
        counts.created += sum(1 for key in changed if key not in stored)
        counts.updated += sum(1 for key in changed if key in stored)
        target_records_upsert(
            connection=connection_id,
            record_type=expense_reports.RECORD_TYPE,
            known=changed,
            source=TargetRecord.Source.PULLED,
            now=batch.now,
        )


FLOW = Flow(
    system=SYSTEM,
    entity=expense_reports.RECORD_TYPE,
    record=expense_reports.RECORD_TYPE,
    read=expense_report_read,
    write=_reports_write,
    what=f"an {expense_reports.RECORD_TYPE} record",
    identity=None,  # `_reports_write` keeps the newest per key
)
