"""Writing and clearing the rows a run stages (reconciliation.models.StagedRow).

PostgreSQL: one COPY per batch (sync.pgcopy). Elsewhere: bulk_create in batches. Staged rows are
scratch: no history, deleted when the run ends.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, router

from reconciliation.models import StagedRow
from reconciliation.pairs.base import Row
from sync.pgcopy import copy_insert, copy_supported

BATCH = 5000
# Fewer staged rows than this: the planner's guess for a small table does no harm.
ANALYZE_FROM = 10_000


def staged_rows_write(*, run_id: int, pair: str, side: str, rows: Sequence[Row]) -> int:
    """Stage `rows` as `side` ("s" or "t") of `pair` for run `run_id`; returns how many."""
    if not rows:
        return 0
    if copy_supported(StagedRow):
        copy_insert(
            model=StagedRow,
            columns=Row._fields,
            rows=rows,
            constants={"run_id": run_id, "pair": pair, "side": side},
            omit=("id",),
        )
    else:
        StagedRow.objects.bulk_create(
            [StagedRow(run_id=run_id, pair=pair, side=side, **row._asdict()) for row in rows],
            batch_size=BATCH,
        )
    return len(rows)


def staged_rows_clear(*, run_id: int) -> int:
    """Delete every row run `run_id` staged (one DELETE). Idempotent."""
    return StagedRow.objects.filter(run_id=run_id)._raw_delete(StagedRow.objects.db)


def staged_rows_analyze() -> None:
    """VACUUM ANALYZE the staged table (PostgreSQL; nothing elsewhere): rows staged in bulk
    moments ago have no statistics (a plan made for an empty table nests loops over a million
    rows) and are not yet marked all-visible (the duplicate check could not scan the key
    index alone). Outside a transaction only: VACUUM refuses to run inside one."""
    connection = connections[router.db_for_write(StagedRow)]
    if connection.vendor != "postgresql":
        return
    table = connection.ops.quote_name(StagedRow._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"{'ANALYZE' if connection.in_atomic_block else 'VACUUM ANALYZE'} {table}")
