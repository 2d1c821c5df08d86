"""The billing step of a cycle: build invoice candidates, then offer the pending ones to billing.

Runs after the inbox is processed and before deliveries are sent, so a cycle's candidates are
issued in the same cycle. Without an enabled billing connection the candidates are still built
(they are what is owed) and wait, pending, for one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from sync.pipeline.billing.candidates import CandidateCounts, invoice_candidates_build
from sync.pipeline.billing.erp_invoices import billing_invoices_number_learn, erp_invoices_offer
from sync.pipeline.billing.issue import IssueCounts, invoice_candidates_offer
from sync.pipeline.connection_services import erp_connection_get
from sync.pipeline.models import Connection, SyncRun
from sync.pipeline.models.connections import System

logger = logging.getLogger(__name__)


@dataclass
class BillingCounts:
    candidates: CandidateCounts
    issued: IssueCounts
    opened: int = 0  # invoices whose number billing gave (draft → open)
    erp_enqueued: int = 0


def billing_connection_get() -> Connection | None:
    """The enabled billing connection invoices are issued in (the first, if several)."""
    return Connection.objects.filter(enabled=True, system=System.BILLING).order_by("id").first()


def billing_cycle_run(
    *,
    run: SyncRun,
    now: dt.datetime | None = None,
    transport_for: Callable[[Connection], Any] | None = None,
) -> BillingCounts:
    """Build the candidates `now`'s completed months and milestones call for (actor: the run);
    read back the numbers of the invoices billing issued since and open them; enqueue the
    invoice of every pending candidate and the ERP invoice of every issued invoice the ERP
    lacks. Idempotent: a second call over the same data creates and enqueues nothing.
    `transport_for(connection)` replaces the network (tests: the in-process sandbox)."""
    now = now or timezone.now()
    actor = f"run:{run.pk}"
    counts = BillingCounts(
        candidates=invoice_candidates_build(
            today=timezone.localdate(now), actor=actor, run_id=run.pk
        ),
        issued=IssueCounts(),
    )
    billing = billing_connection_get()
    if billing is None:
        logger.warning("no enabled billing connection: invoice candidates wait, pending")
        return counts
    counts.opened = billing_invoices_number_learn(
        billing=billing,
        actor=actor,
        transport=transport_for(billing) if transport_for is not None else None,
        now=now,
    )
    counts.issued = invoice_candidates_offer(billing=billing, now=now, run_id=run.pk)
    erp = erp_connection_get()
    if erp is not None:
        counts.erp_enqueued = erp_invoices_offer(erp=erp, now=now)
    return counts
