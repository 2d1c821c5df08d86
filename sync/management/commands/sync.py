"""`python manage.py sync <subcommand>`: run a cycle, backfill an entity, set up connections.

    sync cycle [--connection NAME …]
    sync backfill --connection NAME --entity E --from YYYY-MM-DD [--to YYYY-MM-DD]
    sync connections
    sync webhooks [--portal-url http://127.0.0.1:8000] [--connection NAME …] [--wait SECONDS]

Thin: parses arguments, calls one service of sync.pipeline, prints what it did.
"""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError

from sync.connectors.base import TransportError
from sync.integrations.registry import ConnectionNotPullable
from sync.pipeline.cycle import sync_backfill_run, sync_cycle_run
from sync.pipeline.models import Connection, SyncRun
from sync.pipeline.models.connections import Dialect
from sync.pipeline.pull import PageProgress
from sync.pipeline.subscriptions import (
    SubscriptionRefused,
    billing_webhook_subscribe,
    psa_webhook_subscribe,
)

# What each kind of connection pushes to which hook: /hooks/psa/<name>, /hooks/billing/<name>.
SUBSCRIBE = {Dialect.KANTATA: psa_webhook_subscribe, Dialect.STRIPE: billing_webhook_subscribe}
COUNTS = ("pulled", "created", "updated", "unchanged", "refused", "failed", "delivered")


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a YYYY-MM-DD date") from None


class Command(BaseCommand):
    help = "Run sync cycles and backfills, and set up connections."

    def add_arguments(self, parser):
        subparsers = parser.add_subparsers(dest="subcommand", metavar="subcommand")
        subparsers.required = True
        cycle = subparsers.add_parser("cycle", help="Run one full cycle now and print a summary.")
        cycle.add_argument(
            "--connection",
            action="append",
            default=[],
            metavar="NAME",
            help="Pull only this connection (repeatable); default: all enabled.",
        )
        backfill = subparsers.add_parser(
            "backfill",
            help="Re-read an entity changed in a date window into the inbox "
            "(ignores and keeps the pull position).",
        )
        backfill.add_argument("--connection", required=True, metavar="NAME")
        backfill.add_argument("--entity", required=True)
        backfill.add_argument("--from", dest="date_from", required=True, metavar="DATE")
        backfill.add_argument(
            "--to", dest="date_to", metavar="DATE", help="Last day included (default: no end)."
        )
        subparsers.add_parser(
            "connections", help="List connections (`sandbox connect` creates the sandbox's)."
        )
        webhooks = subparsers.add_parser(
            "webhooks",
            help="Subscribe the PSA and billing connections to push their events "
            "here (PSA approvals, billing invoices and payments), each with a fresh signing "
            "secret.",
        )
        webhooks.add_argument(
            "--portal-url",
            default="http://127.0.0.1:8000",
            help="Where the PSA and the billing system reach this portal (default %(default)s).",
        )
        webhooks.add_argument(
            "--connection",
            action="append",
            default=[],
            metavar="NAME",
            help="A Kantata or Stripe connection (repeatable; default: every enabled one).",
        )
        webhooks.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="Keep trying this long while a system does not answer.",
        )

    def handle(self, *args, subcommand: str, **options):
        handler = getattr(self, f"_{subcommand}")
        handler(**options)

    # -- cycle ---------------------------------------------------------------------------------
    def _cycle(self, *, connection: list[str], **_):
        connections = None
        if connection:
            connections = list(Connection.objects.filter(name__in=connection))
            missing = set(connection) - {c.name for c in connections}
            if missing:
                raise CommandError(f"no connection named {', '.join(sorted(missing))}")
        run = sync_cycle_run(connections=connections)
        self._summary(run)
        if run.status == SyncRun.Status.FAILED:
            raise CommandError(f"cycle {run.pk} failed:\n{run.error}")

    def _summary(self, run: SyncRun) -> None:
        seconds = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0
        self.stdout.write(f"run {run.pk} ({run.kind}) {run.status} in {seconds:.1f}s")
        stages = getattr(run, "stage_seconds", {}) or {}
        if stages:
            self.stdout.write("  " + "  ".join(f"{k} {v:.1f}s" for k, v in stages.items()))
        width = max(len(name) for name in COUNTS)
        self.stdout.write(f"  {'count':<{width}}  {'records':>9}")
        for name in COUNTS:
            self.stdout.write(f"  {name:<{width}}  {getattr(run, name):>9}")
        flows = getattr(run, "flow_counts", {}) or {}
        if flows:
            self.stdout.write("  by flow:")
        for flow, counts in flows.items():
            said = ", ".join(f"{name} {n}" for name, n in counts.items() if n)
            self.stdout.write(f"    {flow}: {said or 'nothing to do'}")
        reoffered = getattr(run, "reoffered", 0)
        if reoffered:
            self.stdout.write(f"  {reoffered} parked records re-offered (their cause may be fixed)")

    # -- backfill ------------------------------------------------------------------------------
    def _backfill(self, *, connection: str, entity: str, date_from: str, date_to: str | None, **_):
        target = Connection.objects.filter(name=connection).first()
        if target is None:
            raise CommandError(f"no connection named {connection!r}")
        start = _day(date_from)
        end = _day(date_to) if date_to else None
        if end is not None and end < start:
            raise CommandError("--to is before --from")
        since = dt.datetime.combine(start, dt.time.min, tzinfo=dt.UTC).isoformat()
        until = dt.datetime.combine(end, dt.time.max, tzinfo=dt.UTC).isoformat() if end else None

        def progress(page: PageProgress) -> None:
            self.stdout.write(
                f"{page.connection}/{page.entity}: page {page.pages}, "
                f"{page.records} records, {page.stored} new"
            )

        try:
            run = sync_backfill_run(
                connection=target, entity=entity, since=since, until=until, on_page=progress
            )
        except ConnectionNotPullable as exc:
            raise CommandError(str(exc)) from exc
        self._summary(run)
        if run.status == SyncRun.Status.FAILED:
            raise CommandError(f"backfill {run.pk} failed:\n{run.error}")

    # -- webhooks ------------------------------------------------------------------------------
    def _webhooks(self, *, portal_url: str, connection: list[str], wait: float, **_):
        found = Connection.objects.filter(dialect__in=list(SUBSCRIBE), enabled=True)
        if connection:
            found = found.filter(name__in=connection)
        targets = list(found.order_by("name"))
        if not targets:
            raise CommandError(
                "no enabled Kantata (PSA) or Stripe (billing) connection to subscribe"
            )
        for target in targets:
            subscribe = SUBSCRIBE[target.dialect]
            deadline = time.monotonic() + wait
            while True:
                try:
                    done = subscribe(connection=target, portal_url=portal_url)
                    break
                except TransportError as exc:
                    if time.monotonic() >= deadline:
                        raise CommandError(f"{target.name}: {exc}") from exc
                    time.sleep(0.5)
                except SubscriptionRefused as exc:
                    raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"subscribed {target.name}: {', '.join(done.event_types)} → {done.url}"
            )

    # -- connections ---------------------------------------------------------------------------
    def _connections(self, **_):
        for c in Connection.objects.order_by("name"):
            state = "enabled" if c.enabled else "disabled"
            self.stdout.write(f"{c.name} ({c.system}, {c.dialect}) {state} {c.base_url}")
