"""Benchmark the dashboards' pages on PostgreSQL with 1,000,000 time entries.

    python scripts/bench.py dashboards                  # 1,000,000 entries, 20 requests a page
    python scripts/bench.py dashboards --n 100000 --requests 30

`make bench` starts a private PostgreSQL and Redis, sets DATABASE_URL and migrates before it
runs this. Target (issue 17, Done when 5): each dashboard page's server time at p95 ≤ 500 ms
over 1,000,000 time entries. Nothing is asserted: the figures go to bench/README.md.

Set-up (not measured): the engine bench's firm (bench/stages/engine_firm.py: 200 projects, 1,000
workers in 20 cost centres), half its projects moved to a second legal entity, each project
staffed by a team of 8 workers from two cost centres; then N time entries COPY'd: work dates
over the last 400 days, 80 % posted, 5 % each invoiced, approved, submitted and draft, 90 %
billable, bill rates 80-200 GBP; 90 days of KPI snapshots; VACUUM ANALYZE; the time rollup
rebuilt (timed twice).

Measured: Django's test Client signed in as each board's role, server time = wall time of
`client.get`, 2 warm-ups then `--requests` requests a page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

TARGET_MS = 500.0
WARM_UPS = 2
CHUNK = 100_000
TEAM = 8
STATUSES = (
    ("posted", 0.80),
    ("invoiced", 0.05),
    ("approved", 0.05),
    ("submitted", 0.05),
    ("draft", 0.05),
)


def _teams(rng: random.Random) -> dict[int, list[int]]:
    """Each project's team: TEAM workers from two cost centres (a practice and a neighbour), as
    a firm staffs work; entries are booked by the project's team only."""
    from sync import models as m

    by_centre: dict[int, list[int]] = {}
    for worker, centre in m.Worker.objects.values_list("pk", "cost_centre_id"):
        by_centre.setdefault(centre, []).append(worker)
    centres = sorted(by_centre)
    teams = {}
    for project in m.Project.objects.order_by("pk").values_list("pk", flat=True):
        first = rng.randrange(len(centres))
        pool = by_centre[centres[first]] + by_centre[centres[(first + 1) % len(centres)]]
        teams[project] = rng.sample(pool, TEAM)
    return teams


def time_entries_load(n: int, *, seed: int = 7) -> float:
    """COPY `n` time entries over the firm's projects, tasks and workers; seconds taken."""
    from django.db import connection
    from django.utils import timezone

    from sync import models as m
    from sync.pgcopy import copy_insert

    rng = random.Random(seed)
    now = timezone.now()
    today = timezone.localdate(now)
    tasks = list(m.Task.objects.values_list("pk", "project_id"))
    teams = _teams(rng)
    names, weights = zip(*STATUSES, strict=True)
    columns = (
        "worker_id", "project_id", "task_id", "work_date", "hours", "billable",
        "bill_rate", "currency_id", "status", "psa_id",
    )  # fmt: skip
    started = time.perf_counter()
    for start in range(0, n, CHUNK):
        rows = []
        for i in range(start, min(n, start + CHUNK)):
            task, project = tasks[rng.randrange(len(tasks))]
            rows.append(
                (
                    rng.choice(teams[project]),
                    project,
                    task,
                    today - dt.timedelta(days=rng.randrange(400)),
                    Decimal(rng.choice(("1.00", "2.50", "4.00", "7.50", "8.00"))),
                    rng.random() < 0.9,
                    Decimal(rng.randrange(80, 201)),
                    "GBP",
                    rng.choices(names, weights)[0],
                    f"bench-te-{i}",
                )
            )
        copy_insert(
            model=m.TimeEntry,
            columns=columns,
            rows=rows,
            constants={"created_at": now, "updated_at": now},
            omit=("id",),
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # every table: the projects moved entity too
    return time.perf_counter() - started


def firm_extend() -> None:
    """A second legal entity with half the projects, and 90 days of KPI snapshots."""
    from django.utils import timezone

    from reconciliation.models import KpiSnapshot
    from sync import models as m

    gbp = m.Currency.objects.get(code="GBP")
    nl = m.LegalEntity.objects.create(
        code="NL01", name="Bench NL", country="NL", functional_currency=gbp
    )
    ids = list(m.Project.objects.order_by("pk").values_list("pk", flat=True))
    m.Project.objects.filter(pk__in=ids[::2]).update(legal_entity=nl)
    today = timezone.localdate()
    KpiSnapshot.objects.bulk_create(
        KpiSnapshot(
            day=today - dt.timedelta(days=d),
            computed_at=timezone.now(),
            values={
                "unbilled_time": {"GBP": {"value": f"{1_000_000 + d * 1000}.00"}},
                "leakage": {"unbilled_time": {"GBP": f"{400_000 + d * 500}.00"}},
            },
        )
        for d in range(1, 91)
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def measure(client, url: str, requests: int) -> tuple[float, float, int]:
    for _ in range(WARM_UPS):
        client.get(url, HTTP_HOST="localhost")
    times = []
    status = 0
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url, HTTP_HOST="localhost")
        times.append((time.perf_counter() - started) * 1000)
        status = response.status_code
    return percentile(times, 0.5), percentile(times, 0.95), status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    settings.DEBUG = False
    from django.contrib.auth.models import Group, User
    from django.test import Client

    from bench.stages.engine_firm import firm_build
    from bench.stages.machine import machine_line

    print(machine_line("before"), flush=True)
    firm_build()
    firm_extend()
    seconds = time_entries_load(args.n)
    print(f"set-up: {args.n:,} time entries in {seconds:.1f} s (COPY + VACUUM ANALYZE)")
    from reconciliation.rollup import time_rollup_refresh

    for attempt in (1, 2):
        state = time_rollup_refresh()
        print(f"time rollup rebuild {attempt}: {state.seconds * 1000:,.0f} ms, {state.rows:,} rows")
    pages = {
        "executive": [
            "/dashboards/?board=executive",
            "/dashboards/?board=executive&legal_entity=NL01",
            "/dashboards/?board=executive&legal_entity=NL01&business_unit=CC003"
            "&period_from=2026-01&period_to=2026-06",
            "/dashboards/records/?cause=unbilled_time&legal_entity=NL01&currency=GBP",
        ],
        "finance": ["/dashboards/?board=finance"],
        "pmo": ["/dashboards/?board=pmo"],
        "integration_ops": ["/dashboards/?board=ops"],
    }
    print(f"\n| page | p50 ms | p95 ms | status | p95 ≤ {TARGET_MS:.0f} ms |")
    print("| --- | --- | --- | --- | --- |")
    for role, urls in pages.items():
        user = User.objects.create_user(f"bench-{role}")
        user.groups.add(Group.objects.get(name=role))
        client = Client()
        client.force_login(user)
        for url in urls:
            p50, p95, status = measure(client, url, args.requests)
            ok = "✔" if p95 <= TARGET_MS and status == 200 else "✘"
            print(f"| `{url}` | {p50:,.0f} | {p95:,.0f} | {status} | {ok} |", flush=True)
    print("\n" + machine_line("after"))


if __name__ == "__main__":
    main()
