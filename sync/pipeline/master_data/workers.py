"""Finding the HR worker an ERP employee or a PSA user stands for, and saying when there is none.

HR owns the worker master: the ERP and the PSA only link to workers HR delivered (see erp_workers.py
and psa.py), matched by employee number or, where the source has none, by e-mail.
"""

from __future__ import annotations

from django.db.models.functions import Lower

from sync.models import Worker
from sync.pipeline.models.exception_items import Queue
from sync.pipeline.processing import SYSTEM_LABELS, Batch, Item


def workers_by_email(emails: set[str]) -> dict[str, Worker]:
    """{lower-case e-mail: worker} (one query; e-mails compare case-insensitively)."""
    if not emails:
        return {}
    return {
        w.email_lower: w
        for w in Worker.objects.annotate(email_lower=Lower("email")).filter(email_lower__in=emails)
    }


def worker_not_in_hr(batch: Batch, item: Item, external_id: str, who: str) -> None:
    """Park a record that names a worker HR has not delivered (WORKER_NOT_IN_HR)."""
    label = SYSTEM_LABELS.get(batch.system, batch.system)
    batch.fail(
        item,
        external_id,
        code="WORKER_NOT_IN_HR",
        queue=Queue.TIME_AND_EXPENSE,
        cause=f"worker:{who}",
        message=f"{label} {batch.entity} {external_id} ({who}) matches no worker from the HR "
        "feed; it is linked once HR delivers the worker.",
        suggested_fix="Check the worker's HR record (employee number and e-mail must match), "
        "then replay.",
    )
