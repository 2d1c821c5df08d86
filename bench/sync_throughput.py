"""Benchmark the sync path stage by stage on PostgreSQL: engine, pull, delivery, latency.

    python scripts/bench.py sync_throughput                 # N = 100,000
    python scripts/bench.py sync_throughput --n 1000000     # the issue's 1,000,000 rows
    python scripts/bench.py sync_throughput --stages engine --batches 2000,5000

`make bench` starts a private PostgreSQL and Redis, sets DATABASE_URL / SANDBOX_DATABASE_URL and
migrates both databases before it runs this. Each measured stage runs in a child process (this
script with `--child`), so its peak RSS (VmHWM) is that stage's alone, and the parent
prints one table. Nothing is asserted: the figures go to bench/README.md. The table opens and
closes with the machine's speed (bench/stages/machine.py), since this VM's cores vary by a
third from one hour to the next.

Stages:
- engine   N approved Kantata time entries already in the inbox (COPY-loaded; not measured) →
           `time_entries_process` in batches → TimeEntry (with its PSA id) + history,
           one outbox Delivery each, inbox rows marked processed. Also a batch-size scan and
           the naive per-row ORM baseline on a 20,000-row subset, and the speed-up.
- pull     N Kantata time entries in the sandbox (bulk-inserted, not measured) served on a
           loopback port, pulled with KantataConnector (per_page 200) and stored page by
           page with `inbox_store`.
- delivery n timeBill deliveries sent by 1, 2 and 4 sender processes (`deliveries_send_due`)
           to the NetSuite sandbox, served in its own process with 50 ms latency and a
           concurrency limit of 10; deliveries/s against the 200/s that limit allows, and the
           429s provoked (bench/stages/delivery.py).
- latency  time approvals at 20/s in the Kantata sandbox → signed webhook → portal → Celery
           task → ERP posting, p50/p95/p99, each part its own process (bench/stages/latency.py).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from bench.stages.engine_firm import (  # noqa: E402
    PROJECTS,
    WORK_MONTH,
    WORKERS,
    firm_build,
    inbox_fill,
)

NAIVE_N = 20_000
SCAN_N = 20_000


# --- set-up ------------------------------------------------------------------------------------


def django_setup() -> None:
    import django
    from django.conf import settings

    django.setup()
    # DEBUG (the default without configuration) keeps every query in memory: not production.
    settings.DEBUG = False


def rss_mib() -> float:
    """This process's peak RSS in MiB. VmHWM where /proc has it: Linux carries ru_maxrss over
    fork and exec, so a child's ru_maxrss is at least its parent's RSS when it was started."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prefix_bounds(prefix: str) -> tuple[int, int]:
    """The id range of one prefix's inbox rows (COPY'd together, so contiguous). Read before a
    child's clock starts: it scans the inbox once."""
    from django.db.models import Max, Min

    from sync.pipeline.models import InboxItem

    bounds = InboxItem.objects.filter(external_id__startswith=f"{prefix}-").aggregate(
        lo=Min("id"), hi=Max("id")
    )
    return bounds["lo"] or 0, bounds["hi"] or 0


def pending_ids(bounds: tuple[int, int], batch: int, part: tuple[int, int] = (0, 1)):
    """Pending inbox ids within `bounds`, `batch` at a time, read as the cycle reads them: the
    `inbox_pending` index in id order (keyset paging: bounded memory). `part` (k, of) keeps
    the ids with id % of == k, for `of` workers side by side (filtered here, not in SQL: an
    expression the planner cannot estimate turned the read into a parallel sequential scan
    of the whole inbox per batch)."""
    from sync.pipeline.models import InboxItem

    k, of = part
    last, hi = bounds[0] - 1, bounds[1]
    while True:
        window = list(
            InboxItem.objects.filter(
                system="psa",
                entity="time_entry",
                status="pending",
                id__gt=last,
                id__lte=hi,
            )
            .order_by("id")
            .values_list("id", flat=True)[: batch * of]
        )
        if not window:
            return
        last = window[-1]
        ids = [i for i in window if i % of == k][:batch]
        if ids:
            last = ids[-1] if len(ids) == batch else last
            yield ids


# --- children: one measured stage each -----------------------------------------------------------


def child_engine(
    prefix: str, batch: int, erp_id: int, profile: str | None, part: tuple[int, int] = (0, 1)
) -> dict:
    from django.db import connection
    from django.utils import timezone

    from sync.pipeline.models import Connection, SyncRun
    from sync.pipeline.time_posting.flow import time_entries_process

    erp = Connection.objects.get(id=erp_id)
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    totals = {"created": 0, "updated": 0, "unchanged": 0, "failed": 0, "deliveries": 0}
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    bounds = prefix_bounds(prefix)
    backend = _backend_cpu_seconds()
    cpu = time.process_time()
    began = time.time()  # wall clock: the parent spans several workers' work with it
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    batches = 0
    for ids in pending_ids(bounds, batch, part):
        counts = time_entries_process(inbox_ids=ids, run=run, erp=erp)
        batches += 1
        for name in totals:
            totals[name] += getattr(counts, name)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    backend = _backend_cpu_seconds() - backend
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM sync_historicaltimeentry WHERE history_actor = %s", [run.actor]
        )
        history = cursor.fetchone()[0]
    rows = totals["created"] + totals["updated"] + totals["unchanged"] + totals["failed"]
    return {
        "rows": rows,
        "seconds": seconds,
        "began": began,
        "ended": began + seconds,
        "rss_mib": rss_mib(),
        "batches": batches,
        "history": history,
        "python_cpu_us_per_row": round(cpu / rows * 1e6),
        "postgres_cpu_us_per_row": round(backend / rows * 1e6) if backend >= 0 else None,
        **totals,
    }


def _backend_cpu_seconds() -> float:
    """CPU seconds (user + system) of this connection's PostgreSQL backend so far, from /proc
    (the bench's server is local); -1 where /proc cannot tell."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return -1.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_naive(prefix: str, erp_id: int) -> dict:
    """The naive path: the same parse/resolve/validate, then one ORM save per row and table.

    References are preloaded per 1,000 items exactly as the engine does (so only the write
    path differs: this is the conservative baseline); each TimeEntry and Delivery is saved on
    its own, history rows come from simple-history's post_save signal.
    """
    from django.db import transaction
    from django.utils import timezone

    from sync.audit import acting_as
    from sync.integrations.kantata.time_entries import time_entry_read
    from sync.models import TimeEntry
    from sync.models.transactions import ApprovalStatus
    from sync.pipeline.models import Connection, InboxItem, SyncRun
    from sync.pipeline.rules import rules_check
    from sync.pipeline.time_posting import references, writers

    erp = Connection.objects.get(id=erp_id)
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    created = failed = 0
    started = time.perf_counter()
    for ids in pending_ids(prefix_bounds(prefix), 1000):
        now = timezone.now()
        with transaction.atomic(), acting_as(run.actor):
            items = list(InboxItem.objects.filter(id__in=ids).order_by("id"))
            parsed = [(item, time_entry_read(item.payload)) for item in items]
            pre = references.time_references_preload(
                parsed=[p for _, p in parsed], today=now.date()
            )
            for item, p in parsed:
                resolved = references.time_entry_resolve(p, pre)
                if rules_check(resolved.facts):
                    failed += 1
                    continue
                entry = TimeEntry(
                    psa_id=p.external_id,
                    worker_id=resolved.worker.pk,
                    project_id=resolved.project.pk,
                    task_id=resolved.task.pk,
                    work_date=p.work_date,
                    hours=p.hours,
                    billable=p.billable,
                    bill_rate=p.rate,
                    currency_id=p.currency,
                    status=ApprovalStatus.APPROVED,
                    approved_at=now,
                    mapping_versions=resolved.versions,
                    correlation_id=resolved.project.correlation_id or item.correlation_id,
                )
                entry.save()
                writers._delivery(entry, resolved, p, item, erp=erp, now=now, pre=pre).save()
                item.status = InboxItem.Status.PROCESSED
                item.processed_at = now
                item.save(update_fields=["status", "processed_at"])
                created += 1
    seconds = time.perf_counter() - started
    return {
        "rows": created + failed,
        "seconds": seconds,
        "rss_mib": rss_mib(),
        "created": created,
        "failed": failed,
    }


def child_pull(n: int, per_page: int) -> dict:
    from django.utils import timezone

    from sandbox.core.app import SandboxApp
    from sandbox.core.faults import FaultBook
    from sandbox.core.server import sandbox_server_start
    from sandbox.models import SandboxRecord
    from sandbox.storage import record_bulk_insert
    from sync.connectors.base import ConnectionConfig
    from sync.integrations.kantata.client import KantataConnector
    from sync.pipeline.inbox import inbox_store
    from sync.pipeline.models import Connection

    rng = random.Random(7)
    now = timezone.now()
    seeded_at = time.perf_counter()
    record_bulk_insert(
        records=(
            SandboxRecord(
                system="kantata",
                object_type="time_entries",
                status="approved",
                data=_kantata_entry(i, rng),
                created_at=now,
                updated_at=now,
            )
            for i in range(n)
        ),
        batch_size=5000,
    )
    seed_seconds = time.perf_counter() - seeded_at
    sandbox = sandbox_server_start(app=SandboxApp(faults=FaultBook(seed=1)), threads=4)
    try:
        from sandbox.kantata import views as kantata

        creds = kantata.credentials(sandbox.url("kantata"))
        conn = Connection.objects.create(
            name=f"bench-psa-{uuid.uuid4().hex[:6]}",
            system="psa",
            dialect="kantata",
            base_url=creds["base_url"],
        )
        conn.credentials_set({"access_token": creds["access_token"]})
        conn.save()
        connector = KantataConnector(ConnectionConfig.from_connection(conn), per_page=per_page)
        stored = pages = 0
        started = time.perf_counter()
        try:
            for page in connector.pull(entity="time_entries"):
                pages += 1
                result = inbox_store(
                    system="psa",
                    entity="time_entry",
                    connection=conn,
                    records=[(str(r["id"]), r) for r in page.records],
                )
                stored += len(result.new)
        finally:
            connector.close()
        seconds = time.perf_counter() - started
    finally:
        sandbox.stop()
    return {
        "rows": stored,
        "pages": pages,
        "seconds": seconds,
        "seed_seconds": seed_seconds,
        "rss_mib": rss_mib(),
    }


def _kantata_entry(i: int, rng: random.Random) -> dict:
    return {
        "workspace_id": str(rng.randrange(PROJECTS) + 1),
        "story_id": str(rng.randrange(1000)),
        "user_id": str(rng.randrange(WORKERS) + 1),
        "date_performed": (WORK_MONTH + dt.timedelta(days=rng.randrange(31))).isoformat(),
        "time_in_minutes": 15 * rng.randint(1, 40),
        "billable": True,
        "approved": True,
        "status": "approved",
        "approval_status": "approved",
        "rate_in_cents": 15000,
        "currency": "GBP",
        "notes": "",
    }


# --- the parent: orchestrate, print ---------------------------------------------------------------


def run_child(*args: str) -> dict:
    completed = subprocess.run(  # noqa: S603 - this script, fixed arguments
        [sys.executable, __file__, "--child", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        sys.stderr.write(completed.stdout + completed.stderr)
        raise SystemExit(f"child {args[0]} failed")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def stage_engine(args, erp_id: int, table: list) -> dict:
    from django.db import connection

    batches = [int(b) for b in args.batches.split(",")]
    prefixes = {
        "naive": args.naive_n,
        **{f"scan{b}": SCAN_N for b in batches if len(batches) > 1},
        "main": args.n,
    }
    fill = 0.0
    for prefix, n in prefixes.items():
        fill += inbox_fill(prefix, n)
    print(
        f"inbox filled with {sum(prefixes.values()):,} rows by COPY in {fill:.1f} s (not measured)",
        flush=True,
    )
    connection.close()
    naive = run_child("naive", "naive", str(erp_id)) if args.naive_n else None
    if naive:
        _row(table, "engine", f"naive per-row ORM, {args.naive_n:,}", naive)
    best = batches[0]
    if len(batches) > 1:
        rates = {}
        for b in batches:
            result = run_child("engine", f"scan{b}", str(b), str(erp_id), "", "0", "1")
            rates[b] = result["rows"] / result["seconds"]
            _row(table, "engine", f"batch {b:,}, {SCAN_N:,} rows", result)
        best = max(rates, key=rates.get)
    main = run_child("engine", "main", str(best), str(erp_id), args.profile or "", "0", "1")
    _row(table, "engine", f"batch {best:,}, N = {args.n:,}", main)
    single = main
    if args.procs > 1:
        # The same work split over several worker processes (as Celery workers would take
        # batches), on a second inbox of N rows: wall time from the first worker's first batch
        # to the last worker's last commit (starting a worker process is not processing).
        inbox_fill("para", args.n)
        connection.close()
        with concurrent.futures.ThreadPoolExecutor(args.procs) as pool:
            parts = list(
                pool.map(
                    lambda k: run_child(
                        "engine", "para", str(best), str(erp_id), "", str(k), str(args.procs)
                    ),
                    range(args.procs),
                )
            )
        para = {
            "rows": sum(r["rows"] for r in parts),
            "seconds": max(r["ended"] for r in parts) - min(r["began"] for r in parts),
            "rss_mib": max(r["rss_mib"] for r in parts),
        }
        for key in ("python_cpu_us_per_row", "postgres_cpu_us_per_row"):
            # CPU an entry over all workers (or their backends), each weighted by its rows.
            if all(r[key] is not None for r in parts) and para["rows"]:
                para[key] = round(sum(r[key] * r["rows"] for r in parts) / para["rows"])
        _row(table, "engine", f"{args.procs} worker processes, N = {args.n:,}", para)
        if para["rows"] / para["seconds"] > main["rows"] / main["seconds"]:
            main = para
    if naive:
        naive_rate = naive["rows"] / naive["seconds"]
        speedup = (single["rows"] / single["seconds"]) / naive_rate
        table.append(("engine", "speed-up over naive, 1 process", f"{speedup:.1f}x", "", ""))
        if main is not single:
            speedup = (main["rows"] / main["seconds"]) / naive_rate
            table.append(
                (
                    "engine",
                    f"speed-up, {args.procs} processes vs naive in 1",
                    f"{speedup:.1f}x",
                    "",
                    "",
                )
            )
    projected = 1_000_000 / (main["rows"] / main["seconds"])
    table.append(("engine", "1,000,000 rows at this rate", f"{projected:.0f} s", "", ""))
    return main


def _row(table: list, stage: str, what: str, result: dict) -> None:
    rate = result["rows"] / result["seconds"] if result["seconds"] else 0
    table.append(
        (
            stage,
            what,
            f"{rate:,.0f} rows/s",
            f"{result['rows']:,} in {result['seconds']:.1f} s",
            f"{result['rss_mib']:.0f} MiB",
        )
    )
    print(f"  {stage:<9} {what:<34} {rate:>10,.0f} rows/s  ({result})", flush=True)


def _delivery_setups(text: str) -> list[tuple[int, ...]]:
    return [tuple(int(x) for x in part.split("x")) for part in text.split(",")]


def _machine_row(table: list, when: str) -> None:
    """The machine's speed now (bench/stages/machine.py): a slow figure beside a slow
    reference is the machine, not the code."""
    from bench.stages.machine import machine_speed

    speed = machine_speed()
    print(f"machine speed {when}: {speed}", flush=True)
    table.append(
        (
            "machine",
            f"reference Python / PostgreSQL, {when}",
            f"{speed['python_ms']:.0f} / {speed['postgres_ms']:.0f} ms",
            "",
            "",
        )
    )


def print_table(table: list) -> None:
    print()
    head = ("stage", "measurement", "rate", "rows / seconds", "peak RSS")
    widths = [max(len(str(r[i])) for r in [head, *table]) for i in range(5)]
    for row in [head, tuple("-" * w for w in widths), *table]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        django_setup()
        kind, *rest = argv[1:]
        if kind == "engine":
            prefix, batch, erp_id, profile, k, of = rest
            result = child_engine(
                prefix, int(batch), int(erp_id), profile or None, (int(k), int(of))
            )
        elif kind == "naive":
            result = child_naive(rest[0], int(rest[1]))
        elif kind == "pull":
            result = child_pull(int(rest[0]), int(rest[1]))
        else:
            raise SystemExit(f"unknown child {kind}")
        print(json.dumps(result))
        return 0

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="time entries (default 100,000)")
    parser.add_argument(
        "--batches",
        default="1000,5000,10000",
        help="engine batch sizes to scan on 20,000 rows; the best runs N",
    )
    parser.add_argument(
        "--procs",
        type=int,
        default=2,
        help="also run the engine in this many processes side by side",
    )
    parser.add_argument("--naive-n", type=int, default=NAIVE_N, help="naive subset size")
    parser.add_argument("--stages", default="engine,pull,delivery,latency")
    parser.add_argument("--pull-n", type=int, default=None, help="pull stage size (default N)")
    parser.add_argument("--delivery-n", type=int, default=4000, help="deliveries to send")
    parser.add_argument(
        "--delivery-setups",
        default="1x0,2x0,4x0",
        help="sender processes x claim limit, comma-separated",
    )
    parser.add_argument("--latency-rate", type=float, default=20.0, help="approvals per second")
    parser.add_argument(
        "--latency-seconds", type=float, default=30.0, help="how long the latency stage approves"
    )
    parser.add_argument("--profile", default="", help="write the engine's cProfile stats here")
    args = parser.parse_args(argv)
    django_setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        print("sync_throughput needs PostgreSQL: run it through scripts/bench.py (make bench).")
        return 2
    stages = args.stages.split(",")
    print(f"{os.cpu_count()} CPUs, load average {load_average()}", flush=True)
    table: list = []
    _machine_row(table, "before")
    firm = firm_build()
    if "engine" in stages:
        stage_engine(args, firm["erp_id"], table)
    if "pull" in stages:
        pull_n = args.pull_n or args.n
        connection.close()
        _row(
            table,
            "pull",
            f"Kantata → inbox, {pull_n:,}, per_page 200",
            run_child("pull", str(pull_n), "200"),
        )
    if "delivery" in stages:
        from bench.stages.delivery import delivery_stage

        connection.close()
        for result in delivery_stage(args.delivery_n, _delivery_setups(args.delivery_setups)):
            table.append(
                (
                    "delivery",
                    f"{result['setup']}, 50 ms, limit 10",
                    f"{result['per_second']:,.1f}/s = {result['share']:.0%} of 200/s; "
                    f"sustained {result['sustained_per_second']:,.1f}/s = "
                    f"{result['sustained_share']:.0%}",
                    f"{result['delivered']:,} in {result['seconds']:.1f} s",
                    f"429s: {result['too_many']:,}",
                )
            )
    if "latency" in stages:
        from bench.stages.latency import latency_stage

        connection.close()
        result = latency_stage(rate=args.latency_rate, seconds=args.latency_seconds)
        table.append(
            (
                "latency",
                f"approval → ERP posting at {args.latency_rate:g}/s, p50 / p95 / p99",
                f"{result['p50_ms']:.0f} / {result['p95_ms']:.0f} / {result['p99_ms']:.0f} ms",
                f"{result['count']:,} posted, {result['never_within_10s']:,} late",
                "",
            )
        )
    print(f"load average after: {load_average()}")
    connection.close()
    _machine_row(table, "after")
    print_table(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
