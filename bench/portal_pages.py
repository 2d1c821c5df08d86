"""Benchmark the Exceptions area's pages on PostgreSQL with 1,000,000 exception items.

    python scripts/bench.py portal_pages                   # 1,000,000 items, 30 requests a page
    python scripts/bench.py portal_pages --n 100000 --requests 50
    python scripts/bench.py portal_pages --explain         # and EXPLAIN ANALYZE each query

`make bench` starts a private PostgreSQL and Redis, sets DATABASE_URL and migrates before it
runs this. Target (issue 15): each page's server time at p95 ≤ 150 ms. Nothing is asserted: the
figures go to bench/README.md, between the machine's speed before and after
(bench/stages/machine.py).

Set-up (not measured): N exception items COPY-loaded as the pipeline would have raised them,
from the posting rules' own codes, queues and messages (`sync.pipeline.rules`):

- one root cause holds half of them (a legal entity missing from the published mapping parks
  every entry of that entity under one cause), the rest spread over ~400 causes with a long
  tail (Zipf: the largest ~90,000 items, the smallest ~100), plus malformed payloads and ERP
  rejections in integration ops;
- 90 % open (8 % of those in progress, assigned), 7 % resolved, 3 % ignored;
- money at risk in GBP / EUR / USD, 15 % without an amount (non-billable time), first failures
  spread over the last 60 days, a legal entity (the giant cause's all LB-NL; the others LB-GB,
  LB-US, LB-DE, or none for a tenth), a correlation id and a small JSON payload each, record keys
  `psa:time_entry:<n>` (a tenth `psa:expense:<n>`);
- a "+" history row for every tenth item only (the history table is read by the item page
  through its index on the item id: its size beyond that does not change the page); the item
  pages measured are items with history and two comments;
- then VACUUM ANALYZE (what autovacuum does minutes after a bulk load). The inbox and the
  deliveries are empty: the item page's trace looks them up by correlation id (an index probe
  each) and finds nothing;
- then the exception summary the cards and groups read is refreshed (what beat does every 15 s):
  timed, REFRESHES times, and reported on its own line; not part of any page's time.

Measured: Django's test Client, signed in as a finance user (role group "finance", six of the
seven queues; one page also as a finance user limited to LB-GB), in this process against the
bench's PostgreSQL; server time is the wall time of
`client.get` (middleware, session, view, queries, template), 3 warm-ups and then `--requests`
requests a page. The item page cycles through `--requests` different items. Each page also
reports its query count and the database's share of one request (CaptureQueriesContext).
"""

from __future__ import annotations

import argparse
import html
import math
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from bench.stages.exception_items import HISTORY_EVERY, items_fill  # noqa: E402

TARGET_MS = 150.0
WARM_UPS = 3
REFRESHES = 5
SCOPED = "finance limited to LB-GB"
HOST = "localhost"  # in ALLOWED_HOSTS of a checkout's settings (the test Client sends "testserver")


def django_setup() -> None:
    import django
    from django.conf import settings

    django.setup()
    # DEBUG (the default without configuration) keeps every query in memory: not production.
    settings.DEBUG = False


# --- set-up ------------------------------------------------------------------------------------


def finance_user(*entities: str):
    """The bench's finance user; with `entities`, one limited to those legal entities."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from portal.models import UserLegalEntity

    name = "-".join(("bench-finance", *entities))
    user, _ = get_user_model().objects.get_or_create(username=name)
    user.groups.add(Group.objects.get(name="finance"))
    for code in entities:
        UserLegalEntity.objects.get_or_create(user=user, legal_entity=code)
    return user


def summary_refresh_measure() -> list[float]:
    """Refresh the exception summary REFRESHES times (what beat runs); ms each."""
    from sync.pipeline.exception_summary import exception_summary_refresh

    times = []
    for _ in range(REFRESHES):
        started = time.perf_counter()
        exception_summary_refresh()
        times.append((time.perf_counter() - started) * 1000)
    return times


# --- measurement -------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the value at least `share` of the values are at or below."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def page_measure(client, urls: list[str], requests: int) -> dict:
    """Server time of `requests` GETs cycling through `urls`, after WARM_UPS."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i in range(WARM_UPS):
        response = client.get(urls[i % len(urls)])
        if response.status_code != 200:
            raise RuntimeError(f"{urls[i % len(urls)]} answered {response.status_code}")
    times = []
    for i in range(requests):
        started = time.perf_counter()
        response = client.get(urls[i % len(urls)])
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{urls[i % len(urls)]} answered {response.status_code}")
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        client.get(urls[0])
        one = (time.perf_counter() - started) * 1000
    db_ms = sum(float(q["time"]) * 1000 for q in captured.captured_queries)
    return {
        "p50": percentile(times, 0.50),
        "p95": percentile(times, 0.95),
        "max": max(times),
        "queries": len(captured.captured_queries),
        "db_share": db_ms / one if one else 0.0,
        "sql": [q["sql"] for q in captured.captured_queries],
    }


def selectors_measure(user, pages: list[tuple[str, list[str]]], requests: int) -> list[tuple]:
    """Where a page's time goes: the selectors the views call, timed alone (same arguments,
    the same warm-ups and number of calls as the pages)."""
    from urllib.parse import urlsplit

    from django.http import QueryDict

    from portal.exception_scope import exception_scope_for
    from sync.pipeline.exception_filters import ExceptionItemFilter
    from sync.pipeline.exception_queries import (
        exception_groups,
        exception_items_page,
        exception_queue_cards,
    )

    scope = exception_scope_for(user)

    def list_page(query: QueryDict):
        found = ExceptionItemFilter(query or None, queryset=scope.items(), user=user)
        return lambda: exception_items_page(items=found.qs, cursor=query.get("after"))

    calls = [
        ("exception_queue_cards (every list page)", lambda: exception_queue_cards(scope=scope))
    ]
    for label, urls in pages:
        url = urlsplit(urls[0])
        if url.path == "/exceptions/" and "limited to" not in label:
            page = label.removeprefix("/exceptions/").strip()
            page = "default" if page.startswith("(cards") else page
            calls.append((f"exception_items_page: {page}", list_page(QueryDict(url.query))))
    calls.append(("exception_groups", lambda: exception_groups(scope=scope)))
    rows = []
    for label, call in calls:
        for _ in range(WARM_UPS):
            call()
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        rows.append(
            (label, f"{percentile(times, 0.5):.1f} ms", f"{percentile(times, 0.95):.1f} ms")
        )
        print(f"  {label:<60} p50 {rows[-1][1]:>9}  p95 {rows[-1][2]:>9}", flush=True)
    return rows


def next_link(body: str) -> str:
    found = re.search(r'rel="next" href="\?([^"]+)"', body)
    if not found:
        raise RuntimeError("the list has no next page")
    return f"/exceptions/?{html.unescape(found.group(1))}"


def pages_pick(client, user) -> list[tuple[str, list[str]]]:
    """(label, urls) of every page measured."""
    from django.db.models import Count, F
    from django.db.models.functions import Mod

    from portal.roles import queues_for
    from sync.pipeline.exception_queries import exception_items_page, open_items
    from sync.pipeline.models import ExceptionComment, ExceptionItem

    queues = queues_for(user)
    open_ = open_items(queues=queues)
    groups = list(open_.values("root_cause").annotate(n=Count("id")).order_by("-n", "root_cause"))
    big = groups[0]
    tail = min(groups, key=lambda g: (abs(g["n"] - 1000), g["root_cause"]))
    second = next_link(client.get("/exceptions/").content.decode())
    deep_last = open_.order_by(F("money_at_risk").desc(nulls_last=True), "pk")[10_000 - 1]
    deep_cursor = f"{deep_last.money_at_risk}|{deep_last.pk}"
    # Items with a history row (every tenth), open, in finance's queues: two comments each.
    middle = ExceptionItem.objects.order_by("-pk").values_list("pk", flat=True)[0] // 2
    items = list(
        open_.annotate(tenth=Mod("id", HISTORY_EVERY))
        .filter(tenth=0, pk__gt=middle)
        .order_by("pk")[:30]
    )
    for item in items:
        if not item.comments.exists():
            ExceptionComment.objects.bulk_create(
                [
                    ExceptionComment(item=item, author=user, body="Asked HR for the record."),
                    ExceptionComment(item=item, author=user, body="Mapping fix due Friday."),
                ]
            )
    if not exception_items_page(items=open_, cursor=deep_cursor).items:
        raise RuntimeError("the cursor after item 10,000 finds no page")
    return [
        ("/exceptions/ (cards + list, default)", ["/exceptions/"]),
        (
            "/exceptions/?queue=time_and_expense&min_amount=100",
            ["/exceptions/?queue=time_and_expense&min_amount=100"],
        ),
        ("/exceptions/ page 2 (its Next link)", [second]),
        ("/exceptions/ page 201 (after item 10,000)", [f"/exceptions/?after={deep_cursor}"]),
        ("/exceptions/groups/", ["/exceptions/groups/"]),
        (
            f"/exceptions/?root_cause= largest group ({big['n']:,})",
            [f"/exceptions/?root_cause={big['root_cause']}"],
        ),
        (
            f"/exceptions/?root_cause= a tail group ({tail['n']:,})",
            [f"/exceptions/?root_cause={tail['root_cause']}"],
        ),
        (f"/exceptions/<id>/ ({len(items)} items)", [f"/exceptions/{i.pk}/" for i in items]),
        (f"/exceptions/ as {SCOPED} (cards + list)", ["/exceptions/"]),
    ]


def explain(sqls: list[str]) -> None:
    """EXPLAIN ANALYZE each query of one request (the slow ones first)."""
    from django.db import connection

    with connection.cursor() as cursor:
        plans = []
        for sql in sqls:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            took = float(re.search(r"Execution Time: ([\d.]+)", plan).group(1))
            plans.append((took, sql, plan))
    for took, sql, plan in sorted(plans, reverse=True):
        if took < 1.0:
            continue
        print(f"\n--- {took:.1f} ms: {sql[:300]}\n{plan}")


def profile(client, url: str) -> None:
    """Where one request's Python time goes: the 25 functions with the most time of their own."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    client.get(url)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    print(out.getvalue())


def print_table(table: list, head: tuple) -> None:
    print()
    widths = [max(len(str(r[i])) for r in [head, *table]) for i in range(len(head))]
    for row in [head, tuple("-" * w for w in widths), *table]:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="exception items (1,000,000)")
    parser.add_argument("--requests", type=int, default=30, help="measured requests a page")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE every query")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one request of each page (top 25)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the items already in the database when there are at least N (development)",
    )
    args = parser.parse_args(argv)
    django_setup()
    from django.db import connection
    from django.test import Client

    from bench.stages.machine import machine_line
    from sync.pipeline.models import ExceptionItem

    if connection.vendor != "postgresql":
        print("portal_pages needs PostgreSQL: run it through scripts/bench.py (make bench).")
        return 2
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    print(machine_line("before"), flush=True)
    if not (args.reuse and ExceptionItem.objects.count() >= args.n):
        built = items_fill(args.n)
        print(
            f"set-up: {built['items']:,} items in {built['items_seconds']:.1f} s (COPY), "
            f"{built['seconds']:.1f} s with history and VACUUM ANALYZE; "
            f"{built['causes']} root causes",
            flush=True,
        )
    refreshes = summary_refresh_measure()
    print(
        "summary refresh (beat's, not in any page): "
        + ", ".join(f"{ms:,.0f}" for ms in refreshes)
        + f" ms (median {sorted(refreshes)[len(refreshes) // 2]:,.0f})",
        flush=True,
    )
    user = finance_user()
    client = Client(HTTP_HOST=HOST)
    client.force_login(user)
    scoped_client = Client(HTTP_HOST=HOST)
    scoped_client.force_login(finance_user("LB-GB"))
    from portal.roles import queues_for
    from sync.pipeline.exception_queries import open_items

    print(
        f"items: {ExceptionItem.objects.count():,}, open in finance's queues: "
        f"{open_items(queues=queues_for(user)).count():,}",
        flush=True,
    )
    table = []
    pages = pages_pick(client, user)
    for label, urls in pages:
        result = page_measure(scoped_client if SCOPED in label else client, urls, args.requests)
        met = "✔" if result["p95"] <= TARGET_MS else "✘"
        print(
            f"  {label:<52} p50 {result['p50']:6.1f}  p95 {result['p95']:6.1f}  "
            f"max {result['max']:6.1f} ms  {met}",
            flush=True,
        )
        table.append(
            (
                label,
                f"{result['p50']:.1f} ms",
                f"{result['p95']:.1f} ms",
                f"{result['max']:.1f} ms",
                f"{result['queries']}, {result['db_share']:.0%}",
                met,
            )
        )
        if args.explain:
            explain(result["sql"])
        if args.profile:
            profile(scoped_client if SCOPED in label else client, urls[0])
    print("selectors alone:", flush=True)
    selectors = selectors_measure(user, pages, args.requests)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(machine_line("after"), flush=True)
    print_table(
        table, ("page", "p50", "p95", "max", "queries, DB share", f"p95 ≤ {TARGET_MS:.0f} ms")
    )
    print_table(selectors, ("selector", "p50", "p95"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
