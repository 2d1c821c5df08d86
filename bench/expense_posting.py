"""Expense posting on PostgreSQL: 10,000 approved PSA expenses through `expenses_process` in
the cycle's batches (1,000), by the ORM bulk path and by COPY, then the same items replayed.

`make bench ARGS="expense_posting"`. Prints rows/s per pass; the inbox fill is not measured.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django

django.setup()

from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.stages.engine_firm import PROJECTS, WORK_MONTH, WORKERS, firm_build  # noqa: E402
from sync import models as m  # noqa: E402
from sync.pipeline.expense_posting import writers  # noqa: E402
from sync.pipeline.expense_posting.flow import expenses_process  # noqa: E402
from sync.pipeline.inbox import inbox_store  # noqa: E402
from sync.pipeline.models import Connection, Delivery, InboxItem, SyncRun  # noqa: E402

N = int(os.environ.get("EXPENSES", "10000"))
BATCH = 1000


def payloads(prefix: str, n: int) -> list[tuple[str, dict]]:
    rng = random.Random(prefix)
    rows = []
    for i in range(n):
        day = WORK_MONTH.replace(day=1 + rng.randrange(28))
        rows.append(
            (
                f"{prefix}-{i}",
                {
                    "id": f"{prefix}-{i}",
                    "workspace_id": f"ws-{rng.randrange(PROJECTS)}",
                    "user_id": f"u-{rng.randrange(WORKERS)}",
                    "date": day.isoformat(),
                    "category": rng.choice(["Travel", "Hotel", "Meals", "Mileage"]),
                    "amount_in_cents": rng.randint(1_500, 45_000),
                    "currency": "GBP",
                    "billable": rng.random() < 0.7,
                    "approved": True,
                    "approval_status": "approved",
                },
            )
        )
    return rows


def run_pass(ids: list[int], erp: Connection) -> float:
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    started = time.perf_counter()
    for offset in range(0, len(ids), BATCH):
        expenses_process(inbox_ids=ids[offset : offset + BATCH], run=run, erp=erp)
    return time.perf_counter() - started


def main() -> None:
    erp = Connection.objects.get(id=firm_build()["erp_id"])
    m.ExternalRef.objects.get_or_create(
        system="erp",
        content_type=ContentType.objects.get_for_model(m.Currency),
        object_id="GBP",
        defaults={"external_id": "1"},
    )
    for mode in ("orm", "copy"):
        writers.copy_supported = (lambda model: False) if mode == "orm" else _copy_supported
        prefix = f"{mode}-{time.time_ns()}"
        stored = inbox_store(system="psa", entity="expenses", records=payloads(prefix, N))
        ids = sorted(item.id for item in stored.new)
        seconds = run_pass(ids, erp)
        made = m.Expense.objects.filter(psa_id__startswith=prefix).count()
        sent = Delivery.objects.filter(external_id__startswith=f"KT-EX-{prefix}").count()
        print(
            f"{mode}: {N:,} expenses in {seconds:.2f} s = {N / seconds:,.0f}/s "
            f"(created {made:,}, deliveries {sent:,})",
            flush=True,
        )
        InboxItem.objects.filter(id__in=ids).update(status="pending")
        seconds = run_pass(ids, erp)
        print(
            f"{mode}: replay of the same {N:,} (nothing new) in {seconds:.2f} s = "
            f"{N / seconds:,.0f}/s",
            flush=True,
        )


_copy_supported = writers.copy_supported

if __name__ == "__main__":
    main()
