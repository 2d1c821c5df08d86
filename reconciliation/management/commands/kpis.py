"""`manage.py kpis [--as-of YYYY-MM-DD] [--json]`: today's KPIs (docs/kpis.md)."""

from __future__ import annotations

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from reconciliation.kpis import kpis_compute


class Command(BaseCommand):
    help = "Print today's KPIs (money per currency; definitions in docs/kpis.md)."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", help="the day to compute for, YYYY-MM-DD (default today)")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, as_of=None, **options):
        try:
            day = dt.date.fromisoformat(as_of) if as_of else None
        except ValueError as exc:
            raise CommandError(f"--as-of must be a date, YYYY-MM-DD: {exc}") from exc
        from reconciliation.rollup import time_rollup_refresh
        from sync.connectors.stats import redis_client

        time_rollup_refresh()  # leakage reads the time rollup: today's figures, not 5 minutes old
        report = kpis_compute(as_of=day, redis=redis_client())
        if options["json"]:
            self.stdout.write(_json_dumps(report))
            return
        for name, value in report.items():
            self.stdout.write(f"{name}: {_json_dumps(value, indent=None)}")


def _json_dumps(value, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, sort_keys=True, default=str)
