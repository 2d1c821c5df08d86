"""The machine's speed at the time of a run: a fixed Python workload and a fixed PostgreSQL
query, timed before and after the measured stages.

The same code has run 1,000,000 entries in 50 s and in 81 s on this 2-core VM on different
days (bench/README.md): the cores' speed moves with whatever else shares the host, and no
reading in the VM (load, steal) shows it. These two figures do: each is the CPU time of work
that never changes, so a slow run of the product beside a slow reference is the machine, and a
slow run beside a fast reference is the code.

- python: CPU milliseconds (process time, one thread) of building, encoding and decoding
  20,000 time-entry-like dicts with Decimal arithmetic: the kind of work the engine's workers do.
- postgres: milliseconds the server takes for a fixed aggregate over 1,000,000 generated rows
  (an md5 each; no table, no sort, nothing written), as timed by EXPLAIN ANALYZE: the
  backend's own clock.

Each is the best of 3, so a single preemption does not count. Nothing here is asserted.
"""

from __future__ import annotations

import json
import time
from decimal import ROUND_HALF_UP, Decimal

REFERENCE_ROUNDS = 3
PYTHON_ITEMS = 20_000
POSTGRES_ROWS = 1_000_000


def _python_once() -> float:
    started = time.process_time()
    cent = Decimal("0.01")
    total = Decimal(0)
    for i in range(PYTHON_ITEMS):
        hours = Decimal(i % 9 + 1) / 4
        rate = Decimal(100 + i % 50)
        entry = {
            "id": f"TE-{i}",
            "worker": f"W-{i % 1000}",
            "date": f"2026-10-{i % 28 + 1:02d}",
            "hours": str(hours),
            "rate": str(rate),
            "amount": str((hours * rate).quantize(cent, ROUND_HALF_UP)),
        }
        decoded = json.loads(json.dumps(entry, sort_keys=True))
        total += Decimal(decoded["amount"])
    return (time.process_time() - started) * 1000


def _postgres_once(cursor) -> float:
    cursor.execute(
        "EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF) "
        # Two small series joined: a series of 1,000,000 at once would be materialised past
        # work_mem into a temporary file, and the disk would be timed with the cores.
        "SELECT sum(length(md5((a * 1000 + b)::text))) "
        "FROM generate_series(1, %s) AS a, generate_series(1, 1000) AS b",
        [POSTGRES_ROWS // 1000],
    )
    plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Execution Time"])


def machine_speed() -> dict[str, float]:
    """{"python_ms": …, "postgres_ms": …}: the reference workloads' best of 3 (lower is a
    faster machine). Needs Django set up; uses the default database's connection."""
    from django.db import connection

    python_ms = min(_python_once() for _ in range(REFERENCE_ROUNDS))
    with connection.cursor() as cursor:
        postgres_ms = min(_postgres_once(cursor) for _ in range(REFERENCE_ROUNDS))
    return {"python_ms": round(python_ms, 1), "postgres_ms": round(postgres_ms, 1)}


def machine_line(label: str) -> str:
    speed = machine_speed()
    return (
        f"machine speed {label}: reference Python {speed['python_ms']:.0f} ms, "
        f"PostgreSQL {speed['postgres_ms']:.0f} ms (lower is faster; bench/README.md)"
    )
