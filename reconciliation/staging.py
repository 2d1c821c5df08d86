"""Writing and clearing the rows a run stages (reconciliation.models.StagedRow).

PostgreSQL: one COPY per batch (sync.pgcopy). Elsewhere: bulk_create in batches. Staged rows are
scratch: no history, deleted when the run ends.
"""

from __future__ import annotations

from collections.abc import Sequence

from reconciliation.models import StagedRow
from reconciliation.pairs.base import Row
from sync.pgcopy import copy_insert, copy_supported

BATCH = 5000


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
