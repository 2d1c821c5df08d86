"""Benchmark reconciliation's comparison: 1,000,000 source rows against ~1,000,000 target rows
staged on PostgreSQL, with differences of every kind planted.

    python scripts/bench.py reconcile                  # 1,000,000 rows, two runs
    python scripts/bench.py reconcile --n 200000 --runs 1

`make bench` starts a private PostgreSQL and Redis, sets DATABASE_URL and migrates before it
runs this. Target (issue 17): the comparison takes at most 3 s. Every planted difference must
be found and nothing else: the bench asserts that (it is not a test; no timing is asserted
anywhere). Figures go to bench/README.md with the machine's speed and `uptime` load.

Per run (a fresh run id each time):
- staging (not the target, reported): the time pair's rows as `reconciliation.staging` writes
  them (COPY in batches of 100,000), source = N entries, target = the same N bills less the
  ones planted missing, plus the planted extras; then VACUUM ANALYZE (`staged_rows_analyze`);
- comparison (the target): `staged_rows_attribute` (keyless bills matched by their natural key)
  and `differences_find` (the duplicated keys, then one full outer join of both sides), exactly
  as a run calls them.
Planted, PLANT each: missing in target, missing in source, duplicate (a keyless copy of a bill,
attributed by its natural key), amount mismatch, status mismatch (a rejected bill).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

TARGET_SECONDS = 3.0
PLANT = 1000
BATCH = 100_000
PAIR = "time"


def django_setup() -> None:
    import django
    from django.conf import settings

    django.setup()
    settings.DEBUG = False  # DEBUG keeps every query in memory: not production


def _row(i: int, *, key: str | None, external_id: str, amount: int, status: str = "live"):
    from reconciliation.pairs.base import Row

    return Row(
        key=key,
        match=f"{i % 900}|2026-{10 + i % 2:02d}-{1 + i % 28:02d}|{i}|750",
        external_id=external_id,
        required=status == "live",
        status=status,
        quantity=750,
        amount=amount,
        currency="EUR" if i % 3 else "GBP",
        period=f"2026-{10 + i % 2:02d}",
        legal_entity_id=1 + i % 4,
        project_id=1 + i % 2000,
        record_id=i,
        approved_at=None,
    )


def plant(n: int) -> dict[str, set[str]]:
    """Which entry indexes carry which planted difference (disjoint, spread over the range)."""
    step = n // (4 * PLANT)
    spots = iter(range(0, n, step))
    kinds = ("missing_in_target", "duplicate", "amount_mismatch", "status_mismatch")
    return {kind: {next(spots) for _ in range(PLANT)} for kind in kinds}


def stage(run_id: int, n: int, planted: dict[str, set[int]]) -> tuple[float, int, int]:
    from reconciliation.staging import staged_rows_write

    def amount(i: int) -> int:
        return 10_000 + i % 50_000

    clock = time.perf_counter()
    source = target = 0
    for start in range(0, n, BATCH):
        rows = [
            _row(i, key=f"KT-TE-{i}", external_id=str(i), amount=amount(i))
            for i in range(start, min(n, start + BATCH))
        ]
        source += staged_rows_write(run_id=run_id, pair=PAIR, side="s", rows=rows)
        bills = []
        for i in range(start, min(n, start + BATCH)):
            if i in planted["missing_in_target"]:
                continue
            bill = _row(i, key=f"KT-TE-{i}", external_id=f"B{i}", amount=amount(i))
            if i in planted["amount_mismatch"]:
                bill = bill._replace(amount=bill.amount + 25)
            if i in planted["status_mismatch"]:
                bill = bill._replace(status="void", required=False)
            bills.append(bill)
            if i in planted["duplicate"]:
                bills.append(bill._replace(key=None, external_id=f"C{i}"))
        target += staged_rows_write(run_id=run_id, pair=PAIR, side="t", rows=bills)
    extras = [
        _row(n + j, key=f"KT-TE-{n + j}", external_id=f"X{j}", amount=5000) for j in range(PLANT)
    ]
    target += staged_rows_write(run_id=run_id, pair=PAIR, side="t", rows=extras)
    return time.perf_counter() - clock, source, target


def compare(run_id: int):
    from reconciliation.compare import differences_find, staged_rows_attribute

    clock = time.perf_counter()
    staged_rows_attribute(run_id=run_id, pair=PAIR)
    attributed = time.perf_counter() - clock
    candidates = differences_find(run_id=run_id, pair=PAIR)
    return time.perf_counter() - clock, attributed, candidates


def statements(run_id: int) -> str:
    """Each statement's server time (EXPLAIN ANALYZE), run again after the measured pass."""
    import json

    from django.db import connection

    from reconciliation import compare as c

    both = [run_id, PAIR]
    timed = {
        "duplicate keys": (c.DUPLICATE_KEYS, both),
        "full outer join": (c.DIFFERENT, [*both, *both, True, True]),
    }
    out = []
    with connection.cursor() as cursor:
        cursor.execute(f"SET work_mem = '{c.WORK_MEM}'")  # as differences_find sets it
        for name, (sql, params) in timed.items():
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
            plan = cursor.fetchone()[0]
            plan = json.loads(plan) if isinstance(plan, str) else plan
            out.append(f"{name} {plan[0]['Execution Time']:.0f} ms")
            if os.environ.get("RECONCILE_PLANS"):
                cursor.execute("EXPLAIN ANALYZE " + sql, params)
                print("\n".join(r[0] for r in cursor.fetchall()))
    return ", ".join(out)


class BenchFailed(Exception):
    """A planted difference was missed, or one was reported that was not planted."""


def check(candidates, planted: dict[str, set[int]], n: int) -> dict[str, int]:
    """Assert that every planted difference, and nothing else, was found."""
    found: dict[str, set[str]] = {}
    for c in candidates:
        found.setdefault(c.kind, set()).add(c.key)
    expected = {kind: {f"KT-TE-{i}" for i in ids} for kind, ids in planted.items()}
    expected["missing_in_source"] = {f"KT-TE-{n + j}" for j in range(PLANT)}
    if found != expected:
        counts = {k: (len(found.get(k, ())), len(v)) for k, v in expected.items()}
        raise BenchFailed(f"found (found, planted) {counts}, or keys that were not planted")
    for c in candidates:
        if c.kind == "duplicate" and sorted(t.external_id for t in c.targets) != sorted(
            [f"B{c.key[6:]}", f"C{c.key[6:]}"]
        ):
            raise BenchFailed(f"duplicate {c.key} names the wrong bills: {c.targets}")
    return {kind: len(keys) for kind, keys in sorted(found.items())}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--explain", action="store_true", help="each statement's server time")
    options = parser.parse_args(argv)
    django_setup()
    from django.db import connection

    from bench.stages.machine import machine_line
    from reconciliation.staging import staged_rows_analyze, staged_rows_clear

    if connection.vendor != "postgresql":
        print("reconcile bench: needs PostgreSQL (make bench sets DATABASE_URL)")
        return 2
    print(machine_line("before"))
    planted = plant(options.n)
    for attempt in range(1, options.runs + 1):
        run_id = 10_000 + attempt
        staged_rows_clear(run_id=run_id)
        seconds, source, target = stage(run_id, options.n, planted)
        clock = time.perf_counter()
        staged_rows_analyze()
        analyzed = time.perf_counter() - clock
        compared, attributed, candidates = compare(run_id)
        counts = check(candidates, planted, options.n)
        if options.explain:
            print(f"  statements: {statements(run_id)}")
        load = "load average (uptime) {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())
        verdict = "within" if compared <= TARGET_SECONDS else "OVER"
        print(
            f"run {attempt}: {source:,} source vs {target:,} target rows; staged (COPY) in "
            f"{seconds:.1f} s, VACUUM ANALYZE {analyzed:.2f} s; comparison {compared:.2f} s "
            f"(attribution {attributed:.2f} s; {verdict} "
            f"the {TARGET_SECONDS:.0f} s target); found every planted difference {counts}; "
            f"{load}"
        )
        staged_rows_clear(run_id=run_id)
    print(machine_line("after"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
