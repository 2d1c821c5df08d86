"""`manage.py reconcile [--period YYYY-MM] [--pair NAME] [--json]`: a reconciliation run now
(docs/reconciliation.md)."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from reconciliation.models import ReconciliationRun
from reconciliation.pairs.registry import PAIRS
from reconciliation.runs import ReconciliationRefused, reconciliation_run
from reconciliation.selectors import run_report


class Command(BaseCommand):
    help = "Reconcile source against target now and print the run (breaks, totals per side)."

    def add_arguments(self, parser):
        parser.add_argument("--period", default="", help="one month, YYYY-MM (default: all)")
        parser.add_argument(
            "--pair",
            action="append",
            choices=sorted(PAIRS),
            help="a pair to compare (repeatable; default: every pair)",
        )
        parser.add_argument("--json", action="store_true", help="print the run as JSON")

    def handle(self, *args, period="", pair=None, **options):
        try:
            run = reconciliation_run(
                trigger=ReconciliationRun.Trigger.ON_DEMAND, pairs=pair, period=period
            )
        except ReconciliationRefused as exc:
            raise CommandError(str(exc)) from exc
        report = run_report(run=run)
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, sort_keys=True))
        else:
            scope = report["scope"]
            self.stdout.write(
                f"reconciliation {run.pk} {run.status}: pairs {', '.join(scope['pairs'])}, "
                f"period {scope['period'] or 'all'}"
            )
            for name, sides in report["totals"].items():
                for side, per in sides.items():
                    for currency, total in per.items():
                        self.stdout.write(
                            f"  {name} {side} {currency}: {total['count']} records, "
                            f"quantity {total['quantity']}, amount {total['amount']}"
                        )
            for b in report["breaks"]:
                why = f"explained: {b['explanation']}" if b["explained"] else "UNEXPLAINED"
                self.stdout.write(
                    f"  {b['pair']} {b['kind']}: source {b['source_external_id']} target "
                    f"{','.join(b['target_external_ids']) or None} {b['amount']} "
                    f"{b['currency'] or ''} ({why})"
                )
            if run.error:
                self.stderr.write(run.error)
        if run.status == ReconciliationRun.Status.FAILED:
            raise CommandError(f"reconciliation {run.pk} failed: {run.error}")
