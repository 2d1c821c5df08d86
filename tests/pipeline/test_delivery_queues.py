"""A target's refusal goes to the queue of whoever owns the record the delivery wrote."""

from __future__ import annotations

import pytest

from sync.pipeline.models.exception_items import Queue
from sync.pipeline.outbox.outcomes import business_queue


@pytest.mark.parametrize(
    ("operation", "queue"),
    [
        ("erp.customer.upsert", Queue.CUSTOMER_MASTER),
        ("crm.account.link", Queue.CUSTOMER_MASTER),
        ("billing.customer.create", Queue.CUSTOMER_MASTER),
        ("erp.job.upsert", Queue.PROJECT_SETUP),
        ("erp.project_task.upsert", Queue.PROJECT_SETUP),
        ("psa.workspace.upsert", Queue.PROJECT_SETUP),
        ("psa.story.upsert", Queue.PROJECT_SETUP),
        ("billing.invoice.create", Queue.BILLING),
        ("erp.invoice.upsert", Queue.BILLING),
        ("erp.time_bill.upsert", Queue.TIME_AND_EXPENSE),
        ("erp.expense_report.upsert", Queue.TIME_AND_EXPENSE),
        ("odd", Queue.TIME_AND_EXPENSE),
    ],
)
def test_a_refusal_goes_to_the_records_owner(operation, queue):
    assert business_queue(operation) == queue
