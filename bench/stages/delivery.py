"""Delivery stage: timeBill deliveries sent to the served NetSuite sandbox (50 ms latency, at most
10 requests in flight) by 1, 2 or 4 senders, as Celery workers would send them.

    python scripts/bench.py stages/delivery --n 4000 --setups 1x0,2x0,4x0
    python scripts/bench.py stages/delivery --n 4000 --mode thread

`bench/sync_throughput.py` calls `delivery_stage(n, setups)`; run alone, this module prints the
same rows. PostgreSQL only (the connection-wide in-flight budget is PostgreSQL's advisory
locks). Each setup gets a fresh connection (`max_concurrency=10`) and n deliveries; every
sender (a process of its own by default, or a thread of one process) runs the Celery task
`sync.deliveries_send_due` in a loop (with the task's own limit and time per call when L is
0, as the sweep enqueues it; else claim limit L) until none of them is open. The sandbox runs
in its own process with its default thread count; it counts every status it answers (the 429s
provoked), the seconds its answers take beyond the injected latency ("busy": its own work
beyond the 50 ms it pads to, HTTP handling, GIL waits), and the parent reads its CPU time
from /proc. Nothing is asserted; every row says whether exactly n ERP records exist for its n
deliveries.

Each row gives two rates: over the whole setup (from "go" to the last outcome recorded), and
sustained, between the first and the last 5 % of the deliveries, which leaves out the senders'
start and the drain of the last requests (docs/decisions.md #30).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

LATENCY = 0.05  # seconds the NetSuite sandbox sleeps in every request
CONCURRENCY = 10  # requests NetSuite allows in flight (429 beyond), and the connection's budget
ALLOWED_PER_SECOND = CONCURRENCY / LATENCY  # 200/s: what that limit allows at best
# (sender processes, claim limit): 0 is the send task's own limit and time (sync.tasks).
DEFAULT_SETUPS = ((1, 0), (2, 0), (4, 0))
OPEN_STATES = ("pending", "in_flight")
# The sustained rate leaves out the first and the last 5 % of a setup's deliveries.
SUSTAINED_TRIM = 0.05


# --- children -------------------------------------------------------------------------------------
def _django_setup() -> None:
    import django
    from django.conf import settings

    django.setup()
    settings.DEBUG = False  # DEBUG keeps every query in memory: not production


def child_serve(port: int) -> None:
    """Serve the sandbox (NetSuite: 50 ms latency, 10 requests in flight at most) with the
    default thread count; GET /_bench/statuses answers the count of every status sent and the
    seconds spent beyond the injected latency."""
    from sandbox.core.app import SandboxApp
    from sandbox.core.faults import FaultBook
    from sandbox.core.server import sandbox_serve

    statuses: dict[int, int] = {}
    busy = [0.0, 0.0]  # seconds answers took beyond the latency; CPU seconds of the app itself
    lock = threading.Lock()

    class CountingSandbox(SandboxApp):
        def __call__(self, environ, start_response):
            if environ.get("PATH_INFO") == "/_bench/statuses":
                with lock:
                    body = json.dumps(
                        {str(k): v for k, v in sorted(statuses.items())}
                        | {"busy": round(busy[0], 3), "app_cpu": round(busy[1], 3)}
                    ).encode()
                start_response("200 OK", [("Content-Type", "application/json")])
                return [body]

            def counted(status, headers, *exc):
                with lock:
                    code = int(status.split()[0])
                    statuses[code] = statuses.get(code, 0) + 1
                return start_response(status, headers, *exc)

            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return super().__call__(environ, counted)
            finally:
                with lock:
                    busy[0] += max(0.0, time.perf_counter() - started - LATENCY)
                    busy[1] += time.thread_time() - cpu

    faults = FaultBook(seed=1)
    faults.configure(
        system="netsuite", changes={"latency_seconds": LATENCY, "concurrency_limit": CONCURRENCY}
    )
    sandbox_serve(app=CountingSandbox(faults=faults), port=port)


def child_send(connection_id: int, threads: int, limit: int) -> dict:
    """`threads` senders in this process, each running the send task (in-process, as a worker
    runs it: `limit` 0 for the task's defaults) while the connection has open deliveries.
    Prints "ready", waits for a line on stdin, then sends."""
    from django.db import connection

    from sync.pipeline.models import Delivery
    from sync.tasks import deliveries_send_due

    totals = {"claimed": 0, "delivered": 0, "retrying": 0, "failed": 0, "released": 0}
    lock = threading.Lock()

    def loop() -> None:
        try:
            while Delivery.objects.filter(
                connection_id=connection_id, state__in=OPEN_STATES
            ).exists():
                counts = deliveries_send_due(**({"limit": limit} if limit else {}))
                with lock:
                    for name in totals:
                        totals[name] += counts[name]
                if not counts["claimed"]:
                    time.sleep(0.05)  # only retries, or other senders' claims, left
        finally:
            connection.close()

    connection.close()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu = time.process_time()
    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {**totals, "ended": time.time(), "cpu": time.process_time() - cpu}


# --- the stage --------------------------------------------------------------------------------
def _books(base: str) -> dict[str, str]:
    """An ERP ledger to post into, written with the NetSuite connector itself."""
    from sandbox.netsuite import views as netsuite
    from sync.connectors.base import ConnectionConfig
    from sync.integrations.netsuite.client import NetSuiteConnector

    ns = NetSuiteConnector(
        ConnectionConfig(
            system="netsuite",
            base_url=base,
            timeout_seconds=30,
            credentials={"client_id": netsuite.CLIENT_ID, "client_secret": netsuite.CLIENT_SECRET},
        )
    )
    try:

        def create(record_type: str, body: dict) -> str:
            return ns.create(record_type=record_type, body=body)

        ids = {"gbp": create("currency", {"name": "Pound", "symbol": "GBP"})}
        ids["uk"] = create("subsidiary", {"name": "LB UK", "currency": {"id": ids["gbp"]}})
        ids["dept"] = create("department", {"name": "Consulting"})
        ids["customer"] = create(
            "customer", {"companyName": "Acme", "subsidiary": {"id": ids["uk"]}}
        )
        ids["employee"] = create(
            "employee",
            {
                "firstName": "Ada",
                "lastName": "L",
                "subsidiary": {"id": ids["uk"]},
                "department": {"id": ids["dept"]},
            },
        )
        ids["job"] = create("job", {"companyName": "Rollout", "parent": {"id": ids["customer"]}})
        ids["task"] = create("projectTask", {"title": "Design", "company": {"id": ids["job"]}})
        create(
            "accountingPeriod",
            {
                "periodName": "Oct 2026",
                "startDate": "2026-10-01",
                "endDate": "2026-10-31",
                "subsidiary": {"id": ids["uk"]},
            },
        )
    finally:
        ns.close()
    return ids


def _sandbox_get(root: str, path: str) -> dict:
    """A JSON GET on the served sandbox, through the one HTTP module."""
    from sync.connectors.base import ConnectionConfig
    from sync.connectors.http import VendorHttp

    client = VendorHttp(ConnectionConfig(system="bench", base_url=root, timeout_seconds=30))
    try:
        return client.request("GET", path).json()
    finally:
        client.close()


def _deliveries_make(
    *, n: int, base: str, books: dict[str, str], budget: int = CONCURRENCY
) -> tuple[int, str]:
    """A fresh ERP connection (max_concurrency `budget`) with n due timeBill deliveries; every other
    NetSuite connection is disabled, so that the senders claim these only."""
    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from sandbox.netsuite import views as netsuite
    from sync.pipeline.models import Connection, Delivery

    Connection.objects.filter(dialect="netsuite").update(enabled=False)
    tag = uuid.uuid4().hex[:6]
    erp = Connection(
        name=f"bench-ns-{tag}",
        system="erp",
        dialect="netsuite",
        base_url=base,
        max_concurrency=budget,
    )
    erp.credentials_set({"client_id": netsuite.CLIENT_ID, "client_secret": netsuite.CLIENT_SECRET})
    erp.save()
    content_type = ContentType.objects.get_for_model(Connection)
    now = timezone.now()
    Delivery.objects.bulk_create(
        [
            Delivery(
                connection=erp,
                operation="erp.time_bill.upsert",
                content_type=content_type,
                object_id=str(i),
                record_version=1,
                idempotency_key=f"bench:{tag}:{i}:v1",
                external_id=f"BENCH-{tag}-{i}",
                next_attempt_at=now,
                correlation_id=f"c-{i}",
                payload={
                    "record_type": "timeBill",
                    "amount": "900.00",
                    "currency": "GBP",
                    "body": {
                        "tranDate": "2026-10-14",
                        "hours": "7.50",
                        "rate": "120.00",
                        "isBillable": True,
                        "employee": {"id": books["employee"]},
                        "customer": {"id": books["job"]},
                        "caseTaskEvent": {"id": books["task"]},
                        "subsidiary": {"id": books["uk"]},
                    },
                },
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    return erp.id, tag


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_pid() -> int | None:
    """The postmaster's pid, when the server's data directory is readable here (the private
    server scripts/bench.py starts)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW data_directory")
        directory = cursor.fetchone()[0]
    try:
        return int((Path(directory) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _postgres_cpu_seconds(postmaster: int | None) -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster, its live backends, and the
    backends that have exited (reaped by the postmaster, counted in its children's time)."""
    if postmaster is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(entry.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(x) for x in fields[11:15]) / tick
        elif parent == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _child(*args: str) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - this script, fixed arguments
        [sys.executable, __file__, "--child", *args],
        cwd=ROOT,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )


def _setup_run(
    *,
    n: int,
    senders: int,
    limit: int,
    mode: str,
    base: str,
    root: str,
    books: dict[str, str],
    server_pid: int,
    budget: int = CONCURRENCY,
) -> dict:
    from django.db import connection

    from sandbox.models import SandboxRecord
    from sync.pipeline.models import Delivery

    connection_id, tag = _deliveries_make(n=n, base=base, books=books, budget=budget)
    connection.close()
    processes = senders if mode == "process" else 1
    threads = 1 if mode == "process" else senders
    children = [
        _child("send", str(connection_id), str(threads), str(limit)) for _ in range(processes)
    ]
    try:
        for child in children:
            if child.stdout.readline().strip() != "ready":
                raise SystemExit("a sender did not start")
        before = _sandbox_get(root, "/_bench/statuses")
        server_cpu = _cpu_seconds(server_pid)
        postmaster = _postgres_pid()
        db_cpu = _postgres_cpu_seconds(postmaster)
        load_before = os.getloadavg()[0]
        started = time.time()
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [
            json.loads(child.communicate()[0].strip().splitlines()[-1]) for child in children
        ]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
    seconds = max(r["ended"] for r in results) - started
    server_cpu = _cpu_seconds(server_pid) - server_cpu
    db_cpu = _postgres_cpu_seconds(postmaster) - db_cpu
    after = _sandbox_get(root, "/_bench/statuses")
    statuses = {k: round(v - before.get(k, 0), 1) for k, v in after.items() if v - before.get(k, 0)}
    requests = sum(v for k, v in statuses.items() if k.isdigit())
    app_cpu = statuses.pop("app_cpu", 0.0)
    delivered = Delivery.objects.filter(connection_id=connection_id, state="delivered").count()
    erp_records = SandboxRecord.objects.filter(
        system="netsuite", object_type="timeBill", external_id__startswith=f"BENCH-{tag}-"
    ).count()
    rate = delivered / seconds if seconds else 0.0
    sustained = _sustained_rate(
        Delivery.objects.filter(connection_id=connection_id, state="delivered").values_list(
            "delivered_at", flat=True
        )
    )
    return {
        "setup": f"{senders} sender {mode}{'es' if mode == 'process' and senders > 1 else ''}"
        f"{'s' if mode == 'thread' and senders > 1 else ''}, "
        f"{f'claim limit {limit}' if limit else _task_defaults()}"
        f"{f', budget {budget}' if budget != CONCURRENCY else ''}",
        "senders": senders,
        "budget": budget,
        "mode": mode,
        "limit": limit,
        "n": n,
        "delivered": delivered,
        "erp_records": erp_records,
        "seconds": round(seconds, 2),
        "per_second": round(rate, 1),
        "share": round(rate / ALLOWED_PER_SECOND, 3),
        "sustained_per_second": round(sustained, 1),
        "sustained_share": round(sustained / ALLOWED_PER_SECOND, 3),
        "too_many": int(statuses.get("429", 0)),
        "statuses": statuses,
        "server_busy_s": statuses.get("busy", 0.0),
        "server_cpu_ms_per_request": round(1000 * server_cpu / requests, 2) if requests else None,
        # The emulator's own work (the app, on its request thread), without waitress's HTTP.
        "app_cpu_ms_per_request": round(1000 * app_cpu / requests, 2) if requests else None,
        "sender_cpu_s": round(sum(r["cpu"] for r in results), 2),
        "postgres_cpu_s": round(db_cpu, 2),
        "released": sum(r["released"] for r in results),
        "load_average": f"{load_before:.2f} → {os.getloadavg()[0]:.2f}",
    }


def _sustained_rate(delivered_at) -> float:
    """Deliveries/s between the first and the last SUSTAINED_TRIM of the deliveries (by the
    moment each was recorded): the rate while every sender is at work, without the senders'
    start (claiming, connecting) and the drain of the last few requests, which make up a few
    per cent of a run of seconds and none of a backlog of hours."""
    stamps = sorted(t.timestamp() for t in delivered_at)
    if len(stamps) < 2:
        return 0.0
    trim = int(len(stamps) * SUSTAINED_TRIM)
    first, last = stamps[trim], stamps[len(stamps) - 1 - trim]
    return (len(stamps) - 1 - 2 * trim) / (last - first) if last > first else 0.0


def _task_defaults() -> str:
    from sync.tasks import SEND_BATCH, SEND_SECONDS

    return f"send task ({SEND_BATCH:,} or {SEND_SECONDS:.0f} s a call)"


def delivery_stage(
    n: int, setups: list[tuple[int, ...]] | None = None, *, mode: str = "process"
) -> list[dict]:
    """Run each (senders, claim limit) setup on n fresh deliveries; one row per setup with
    deliveries/s, the share of the 200/s the ERP's limit allows, the 429s provoked and the
    seconds. Call with Django set up on PostgreSQL (both databases migrated)."""
    import socket

    from django.db import connection

    if connection.vendor != "postgresql":
        raise SystemExit("the delivery stage needs PostgreSQL (run it through scripts/bench.py)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connection.close()
    server = subprocess.Popen(  # noqa: S603 - this script, fixed arguments
        [sys.executable, __file__, "--child", "serve", str(port)],
        cwd=ROOT,
    )
    root = f"http://127.0.0.1:{port}"
    base = f"{root}/netsuite"
    rows = []
    try:
        _wait_healthy(root)
        books = _books(base)
        for senders, limit, *budget in setups or DEFAULT_SETUPS:
            row = _setup_run(
                n=n,
                senders=senders,
                limit=limit,
                mode=mode,
                base=base,
                root=root,
                books=books,
                server_pid=server.pid,
                budget=budget[0] if budget else CONCURRENCY,
            )
            print(
                f"  delivery  {row['setup']:<36} {row['per_second']:>7,.1f}/s "
                f"= {row['share']:.0%} of {ALLOWED_PER_SECOND:.0f}/s "
                f"(sustained {row['sustained_per_second']:,.1f}/s "
                f"= {row['sustained_share']:.0%}), "
                f"429s: {row['too_many']:,}  ({row})",
                flush=True,
            )
            rows.append(row)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return rows


def _wait_healthy(root: str, timeout: float = 30.0) -> None:
    from sync.connectors.base import TransportError

    deadline = time.monotonic() + timeout
    while True:
        try:
            _sandbox_get(root, "/_control/health")
            return
        except TransportError:
            if time.monotonic() > deadline:
                raise SystemExit(f"sandbox not healthy at {root}") from None
            time.sleep(0.2)


def _setups(text: str) -> list[tuple[int, ...]]:
    return [tuple(int(x) for x in part.split("x")) for part in text.split(",")]


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        _django_setup()
        kind, *rest = argv[1:]
        if kind == "serve":
            child_serve(int(rest[0]))
            return 0
        if kind == "send":
            print(json.dumps(child_send(int(rest[0]), int(rest[1]), int(rest[2]))))
            return 0
        raise SystemExit(f"unknown child {kind}")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="deliveries per setup")
    parser.add_argument(
        "--setups",
        default=",".join(f"{s}x{lim}" for s, lim in DEFAULT_SETUPS),
        help="senders x claim limit (0: the send task's own) [x connection "
        "budget, default 10], comma-separated",
    )
    parser.add_argument(
        "--mode",
        choices=["process", "thread"],
        default="process",
        help="senders as processes (as Celery workers) or threads of one",
    )
    args = parser.parse_args(argv)
    _django_setup()
    print(
        f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    from bench.stages.machine import machine_speed

    print(f"machine speed before: {machine_speed()}", flush=True)
    rows = delivery_stage(args.n, _setups(args.setups), mode=args.mode)
    print(f"machine speed after: {machine_speed()}", flush=True)
    print()
    print(
        "| setup | deliveries/s | share of 200/s | sustained | 429s | seconds | ERP records "
        "| load |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['setup']} | {row['per_second']:,.1f} | {row['share']:.0%} | "
            f"{row['sustained_per_second']:,.1f} = {row['sustained_share']:.0%} | "
            f"{row['too_many']:,} | {row['seconds']} | {row['erp_records']:,} / {row['n']:,} | "
            f"{row['load_average']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
