"""The billing step of a cycle: build invoice candidates, then offer the pending ones to billing.

Runs after the inbox is processed and before deliveries are sent, so a cycle's candidates are
issued in the same cycle. Without an enabled billing connection the candidates are still built
(they are what is owed) and wait, pending, for one.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.utils import timezone

from sync.pipeline.billing.candidates import CandidateCounts, invoice_candidates_build
from sync.pipeline.billing.issue import IssueCounts, invoice_candidates_offer
from sync.pipeline.models import Connection, SyncRun
from sync.pipeline.models.connections import System

logger = logging.getLogger(__name__)


@dataclass
class BillingCounts:
    candidates: CandidateCounts
    issued: IssueCounts


def billing_connection_get() -> Connection | None:
    """The enabled billing connection invoices are issued in (the first, if several)."""
    return Connection.objects.filter(enabled=True, system=System.BILLING).order_by("id").first()


def billing_cycle_run(*, run: SyncRun, now: dt.datetime | None = None) -> BillingCounts:
    """Build the candidates `now`'s completed months and milestones call for (actor: the run)
    and enqueue the invoice of every pending candidate. Idempotent: a second call over the same
    data creates and enqueues nothing."""
    now = now or timezone.now()
    built = invoice_candidates_build(
        today=timezone.localdate(now), actor=f"run:{run.pk}", run_id=run.pk
    )
    billing = billing_connection_get()
    if billing is None:
        logger.warning("no enabled billing connection: invoice candidates wait, pending")
        return BillingCounts(candidates=built, issued=IssueCounts())
    issued = invoice_candidates_offer(billing=billing, now=now, run_id=run.pk)
    return BillingCounts(candidates=built, issued=issued)
