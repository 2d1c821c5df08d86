"""Latency: a time approval in the PSA to its ERP posting, through the real event path.

    python scripts/bench.py stages/latency --rate 20 --seconds 30     # on its own
    latency_stage(rate=20.0, seconds=30.0)                             # from sync_throughput.py

Real parts, each its own process, on the PostgreSQL and Redis `scripts/bench.py` started (two
fresh databases on that server, created and migrated here and dropped at the end, so the other
stages' rows cannot leak in):

- the sandbox (`manage.py sandbox serve`): Kantata with its webhook dispatcher, NetSuite;
- the portal (waitress, as scripts/run.py serves it), which receives the webhooks;
- a Celery worker (prefork, concurrency 2, as scripts/run.py starts it).

Set-up (not measured): the sandbox's demo firm (`sandbox seed --scale demo --seed 42`),
connections from the sandbox (`sandbox connect`, which also publishes the demo
legal-entity mapping), one `sync cycle` (master data, and the demo's approved time taken in),
the PSA connection's webhook subscribed with a fresh secret, and a warm-up of a few approvals
(every process has loaded its code and opened its connections).

Measured: unapproved time entries that will pass validation are approved at `rate` per second
for `seconds` (`time_entries_approve`, the sandbox service `sandbox simulate` uses: record
approved, change event, one webhook delivery queued); per entry, from the sandbox's approval
event time to the `created_at` of the NetSuite timeBill `KT-TE-<id>`, both stamped by the
sandbox on one clock. p50/p95/p99 over the postings that arrived, how many never arrived within
10 s, the median of each leg (approval → the dispatcher's round → webhook stored in the inbox →
the task's batch started → the ERP stored the timeBill), and the tasks' batches.

Entries picked: unapproved entries of (story, consultant) pairs the set-up cycle took in as
canonical entries (validation passed), on a project open now, dated in a period open for the
project's legal entity: a mapped legal entity, a named worker, a valid task, an open period.
If there are fewer than rate * seconds of them, the rest are booked first (copies of taken-in
entries of an open period, unapproved, as a consultant books time) and approved the same way;
the result says how many of each, and how many were parked as exceptions after all (by code).

`conn_max_age` sets DB_CONN_MAX_AGE for the portal and the worker (persistent database
connections, the default 60 s); 0 opens a new connection per request and per task.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent.parent
MANAGE = [sys.executable, "manage.py"]
ARRIVAL_LIMIT_SECONDS = 10.0
WARM_UP = 5
WORKER_CONCURRENCY = 2


# --- the parent: databases and processes --------------------------------------------------------
def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, process: subprocess.Popen, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} while starting")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on port {port} within {timeout:.0f} s")


def _server_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise RuntimeError("the latency stage needs PostgreSQL: run it through scripts/bench.py")
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _databases_create(server: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')


def _databases_drop(server: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Processes:
    """Child processes in their own process groups, output to log files, all stopped at the end."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.running: list[tuple[str, subprocess.Popen]] = []

    def run(self, name: str, argv: list[str]) -> float:
        started = time.perf_counter()
        with open(self.logs / f"{name}.log", "ab") as log:
            code = subprocess.call(  # noqa: S603 - our own manage.py commands
                argv,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if code != 0:
            raise RuntimeError(f"{' '.join(argv[1:4])} failed:\n{self.tail(name)}")
        return time.perf_counter() - started

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        process = subprocess.Popen(  # noqa: S603 - our own manage.py commands
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.running.append((name, process))
        return process

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def check(self) -> None:
        for name, process in self.running:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {process.returncode}:\n{self.tail(name)}"
                )

    def stop(self) -> None:
        for _, process in reversed(self.running):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _pool_size(pid: int) -> int:
    try:
        return len(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        return 0


def latency_stage(rate: float = 20.0, seconds: float = 30.0, *, conn_max_age: int = 60) -> dict:
    """Approve PSA time at `rate`/s for `seconds` and measure approval → ERP posting (see the
    module docstring). Needs DATABASE_URL (PostgreSQL) and REDIS_URL, as scripts/bench.py sets
    them. Returns the figures (milliseconds) and the set-up's counts; raises RuntimeError when
    a part fails to start (with the tail of its log)."""
    server = _server_url(os.environ.get("DATABASE_URL", ""))
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        raise RuntimeError("the latency stage needs REDIS_URL: run it through scripts/bench.py")
    tag = uuid.uuid4().hex[:8]
    names = [f"latency_{tag}", f"latency_{tag}_sandbox"]
    sandbox_port, portal_port = _free_port(), _free_port()
    workdir = Path(tempfile.mkdtemp(prefix="ledgerbridge-latency-"))
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"{server}/{names[0]}",
        SANDBOX_DATABASE_URL=f"{server}/{names[1]}",
        REDIS_URL=redis_url,
        LEDGERBRIDGE_VAR_DIR=str(workdir / "var"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        LOG_LEVEL="WARNING",
        DB_CONN_MAX_AGE=str(conn_max_age),
    )
    processes = _Processes(env, workdir)
    kept = True  # the logs, unless the stage succeeds
    setup: dict[str, float] = {}
    print(f"latency: load average {_load()}; logs in {workdir}", flush=True)
    _databases_create(server, names)
    try:
        clock = time.perf_counter()
        migrations = [
            processes.start(
                f"migrate-{database}",
                [
                    *MANAGE,
                    "migrate",
                    "--noinput",
                    "-v",
                    "0",
                    "--database",
                    database,
                ],
            )
            for database in ("default", "sandbox")
        ]
        for migration in migrations:
            if migration.wait() != 0:
                raise RuntimeError(
                    f"migrate failed:\n{processes.tail('migrate-default')}\n"
                    f"{processes.tail('migrate-sandbox')}"
                )
        processes.running.clear()
        setup["migrate"] = time.perf_counter() - clock
        setup["seed"] = processes.run(
            "seed", [*MANAGE, "sandbox", "seed", "--scale", "demo", "--seed", "42", "--reset"]
        )
        sandbox_root = f"http://127.0.0.1:{sandbox_port}"
        processes.run("connections", [*MANAGE, "sandbox", "connect", "--base-url", sandbox_root])
        sandbox = processes.start(
            "sandbox", [*MANAGE, "sandbox", "serve", "--port", str(sandbox_port)]
        )
        _wait_port(sandbox_port, sandbox, "the sandbox")
        setup["cycle"] = processes.run("cycle", [*MANAGE, "sync", "cycle"])
        print(
            f"latency: set-up {', '.join(f'{k} {v:.1f} s' for k, v in setup.items())}; "
            f"load average {_load()}",
            flush=True,
        )
        bin_dir = Path(sys.executable).parent
        portal = processes.start(
            "portal",
            [
                str(bin_dir / "waitress-serve"),
                f"--listen=127.0.0.1:{portal_port}",
                "--threads=8",
                "portal.wsgi:application",
            ],
        )
        worker = processes.start(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "WARNING",
                "--concurrency",
                str(WORKER_CONCURRENCY),
                "--queues",
                "celery,events",
                "--hostname",
                f"latency-{tag}@%h",
                "--without-mingle",
                "--without-gossip",
            ],
        )
        _wait_port(portal_port, portal, "the portal")
        deadline = time.monotonic() + 120
        while _pool_size(worker.pid) < WORKER_CONCURRENCY:
            processes.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker's pool did not start:\n{processes.tail('worker')}")
            time.sleep(0.2)
        args = json.dumps(
            {
                "rate": rate,
                "seconds": seconds,
                "sandbox": sandbox_root,
                "portal": f"http://127.0.0.1:{portal_port}",
            }
        )
        driver = subprocess.run(  # noqa: S603 - this file, fixed arguments
            [sys.executable, __file__, "--child", args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        processes.check()
        if driver.returncode != 0:
            raise RuntimeError(f"the latency driver failed:\n{driver.stdout}\n{driver.stderr}")
        result = json.loads(driver.stdout.strip().splitlines()[-1])
        result["setup_seconds"] = {k: round(v, 1) for k, v in setup.items()}
        result["conn_max_age"] = conn_max_age
        kept = False
        return result
    finally:
        processes.stop()
        _databases_drop(server, names)
        if kept:
            print(f"latency: logs kept in {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


# --- the driver child: subscribe, pick, approve at the rate, measure ---------------------------
def _django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.DEBUG = False  # no query log in a long loop


def _subscribe(portal_url: str) -> None:
    """Subscribe the PSA connection's webhook at the sandbox (the service `make run` uses)."""
    from sync.pipeline.models import Connection
    from sync.pipeline.subscriptions import psa_webhook_subscribe

    psa_webhook_subscribe(
        connection=Connection.objects.get(name="kantata"),
        portal_url=portal_url,
        event_types=("time_entry.approved",),
    )


def _posted_psa_ids() -> set[str]:
    """PSA time entries the set-up cycle took in as canonical entries (they passed validation;
    their postings are delivered or on their way)."""
    from sync.models import TimeEntry

    return set(TimeEntry.objects.exclude(psa_id=None).values_list("psa_id", flat=True))


def _open_days() -> dict[str, list[tuple[str, str]]]:
    """Open periods by PSA workspace id of an open project: [(first day, last day)], ISO."""
    from django.contrib.contenttypes.models import ContentType

    from sync.models import AccountingPeriod, ExternalRef, Project

    periods: dict[int, list[tuple[str, str]]] = {}
    for entity_id, start, end in AccountingPeriod.objects.filter(status="open").values_list(
        "legal_entity_id", "start_date", "end_date"
    ):
        periods.setdefault(entity_id, []).append((start.isoformat(), end.isoformat()))
    # Only projects open for time: a closed project's entry is parked (PROJECT_NOT_OPEN).
    entity_of = dict(Project.objects.filter(status="open").values_list("pk", "legal_entity_id"))
    refs = ExternalRef.objects.filter(
        system="psa", content_type=ContentType.objects.get_for_model(Project)
    )
    return {
        workspace: periods.get(entity_of.get(int(pk)), [])
        for workspace, pk in refs.values_list("external_id", "object_id")
    }


def _in_open_period(record, open_days: dict[str, list[tuple[str, str]]]) -> bool:
    day = str(record.data.get("date_performed") or "")
    return any(start <= day <= end for start, end in open_days.get(str(record.parent_id), []))


def _entries_pick(needed: int) -> dict:
    """Unapproved entries that will pass validation, topped up with booked copies (see the
    module docstring). Returns {"ids", "unapproved", "picked", "booked"}."""
    from sandbox import storage

    entries = storage.record_queryset(system="kantata", object_type="time_entries")
    posted_ids = _posted_psa_ids()
    open_days = _open_days()
    posted = [
        r
        for r in entries.filter(pk__in=[int(i) for i in posted_ids]).order_by("pk")
        if _in_open_period(r, open_days)
    ]
    good_pairs = {(r.data.get("story_id"), r.data.get("user_id")) for r in posted}
    unapproved = list(entries.filter(status="unapproved").order_by("pk"))
    picked = [
        r.pk
        for r in unapproved
        if (r.data.get("story_id"), r.data.get("user_id")) in good_pairs
        and _in_open_period(r, open_days)
    ]
    booked: list[int] = []
    for n in range(max(0, needed - len(picked))):
        model = posted[n % len(posted)]
        data = {
            **model.data,
            "approval_status": "submitted",
            "notes": "booked by the latency benchmark",
        }
        data.pop("approved", None)
        booked.append(
            storage.record_create(
                system="kantata",
                object_type="time_entries",
                data=data,
                parent_id=model.parent_id,
                status="unapproved",
            ).pk
        )
    return {
        "ids": (picked + booked)[:needed],
        "unapproved": len(unapproved),
        "picked": min(len(picked), needed),
        "picked_of": len(picked),
        "booked": len(booked),
        "posted_in_open_periods": len(posted),
    }


def _wait_posted(ids: list[int], timeout: float) -> int:
    from sandbox import storage

    keys = [f"KT-TE-{i}" for i in ids]
    bills = storage.record_queryset(system="netsuite", object_type="timeBill")
    deadline = time.monotonic() + timeout
    while True:
        found = bills.filter(external_id__in=keys).count()
        if found == len(keys) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def _quantile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank quantile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, min(len(sorted_values), round(q * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def _measure(ids: list[int], since) -> dict:
    """Per entry: approval event time → timeBill created_at, and the legs in between."""
    from sandbox import storage
    from sandbox.models import SandboxEvent, SandboxWebhookDelivery
    from sandbox.router import SANDBOX_DB
    from sync.pipeline.models import ExceptionItem, InboxItem, SyncRun

    approved = dict(
        SandboxEvent.objects.using(SANDBOX_DB)
        .filter(
            system="kantata",
            object_type="time_entries",
            action="approved",
            record_id__in=ids,
        )
        .values_list("record_id", "occurred_at")
    )
    posted = {
        int(ext.removeprefix("KT-TE-")): created
        for ext, created in storage.record_queryset(system="netsuite", object_type="timeBill")
        .filter(external_id__in=[f"KT-TE-{i}" for i in ids])
        .values_list("external_id", "created_at")
    }
    events = {
        int(payload["subject_id"]): (received, processed)
        for payload, received, processed in InboxItem.objects.filter(
            system="psa", entity="approval_events"
        ).values_list("payload", "received_at", "processed_at")
    }
    # When the dispatcher's round that sent each approval's webhook started.
    dispatched = dict(
        SandboxWebhookDelivery.objects.using(SANDBOX_DB)
        .filter(
            event__record_id__in=ids,
            event__action="approved",
            delivered_at__isnull=False,
        )
        .values_list("event__record_id", "delivered_at")
    )
    totals, stored_legs, processed_legs, posted_legs = [], [], [], []
    woken_legs, post_legs = [], []
    late = 0
    for entry in ids:
        start, end = approved.get(entry), posted.get(entry)
        if start is None or end is None:
            continue
        total = (end - start).total_seconds()
        late += total > ARRIVAL_LIMIT_SECONDS
        totals.append(total)
        received, processed = events.get(entry, (None, None))
        if entry in dispatched and received is not None:
            woken_legs.append((dispatched[entry] - start).total_seconds())
            post_legs.append((received - dispatched[entry]).total_seconds())
        if received is not None and processed is not None:
            stored_legs.append((received - start).total_seconds())
            processed_legs.append((processed - received).total_seconds())
            posted_legs.append((end - processed).total_seconds())
    totals.sort()
    parked = Counter(
        ExceptionItem.objects.filter(
            record_key__in=[f"psa:time_entry:{i}" for i in ids]
        ).values_list("code", flat=True)
    )

    def median(values: list[float]) -> float | None:
        return _ms(_quantile(sorted(values), 0.5))

    # The webhook tasks' batches (one sync run each) while the entries were approved.
    runs = list(
        SyncRun.objects.filter(entity="approval_events", started_at__gte=since).values_list(
            "created", "started_at", "finished_at"
        )
    )
    batch = {
        "runs": len(runs),
        "entries_per_run": round(sum(r[0] for r in runs) / len(runs), 1) if runs else None,
        "run_p50_ms": median([(r[2] - r[1]).total_seconds() for r in runs if r[2]]),
    }

    return {
        # Quantiles over every posting that arrived while we waited (10 s and a little).
        "count": len(totals),
        "never_within_10s": len(ids) - len(totals) + late,
        "parked_as_exceptions": sum(parked.values()),
        "parked_codes": dict(parked),
        "p50_ms": _ms(_quantile(totals, 0.50)),
        "p95_ms": _ms(_quantile(totals, 0.95)),
        "p99_ms": _ms(_quantile(totals, 0.99)),
        "max_ms": _ms(totals[-1] if totals else None),
        "batches": batch,
        "legs_p50_ms": {
            "approval_to_dispatcher_round": median(woken_legs),
            "round_to_webhook_stored": median(post_legs),
            "approval_to_webhook_stored": median(stored_legs),
            "stored_to_task_processing": median(processed_legs),
            "processing_to_erp_stored": median(posted_legs),
        },
    }


def child_drive(rate: float, seconds: float, sandbox_root: str, portal_url: str) -> dict:
    from django.utils import timezone

    from sandbox.kantata.webhooks import time_entries_approve

    _subscribe(portal_url)
    total = int(rate * seconds)
    chosen = _entries_pick(WARM_UP + total)
    ids = chosen.pop("ids")
    if len(ids) < WARM_UP + total:
        raise RuntimeError(f"only {len(ids)} entries to approve, {WARM_UP + total} needed")
    warm, measured = ids[:WARM_UP], ids[WARM_UP:]
    time_entries_approve(ids=warm)
    warmed = _wait_posted(warm, timeout=120)
    load_before = _load()
    since = timezone.now()
    started = time.perf_counter()
    interval = 1.0 / rate
    for n, entry in enumerate(measured):
        wait = started + n * interval - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        time_entries_approve(ids=[entry])
    approving = time.perf_counter() - started
    _wait_posted(measured, timeout=ARRIVAL_LIMIT_SECONDS + 2)
    result = _measure(measured, since)
    result.update(
        rate=rate,
        seconds=round(approving, 1),
        approved=len(measured),
        warm_up=warmed,
        load_before=load_before,
        load_after=_load(),
        rows=result["count"],
        **chosen,
    )
    return result


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--child":
        _django_setup()
        args = json.loads(argv[1])
        print(
            json.dumps(child_drive(args["rate"], args["seconds"], args["sandbox"], args["portal"]))
        )
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="approvals per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to approve")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="DB_CONN_MAX_AGE of the portal and worker (60: the default)",
    )
    args = parser.parse_args(argv)
    result = latency_stage(rate=args.rate, seconds=args.seconds, conn_max_age=args.conn_max_age)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
