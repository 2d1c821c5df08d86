"""The billing steps of a cycle.

- `billing_cycle_run`, after the inbox is processed and before deliveries are sent: build the
  invoice candidates, then offer the pending ones to billing (one delivery each).
- `billing_follow_up`, after those deliveries: read back the numbers of the invoices billing
  issued and open them, then offer each to the ERP; the cycle delivers what it enqueued, so a
  candidate reaches billing and the ERP in one cycle.

Without an enabled billing connection the candidates are still built (they are what is owed)
and wait, pending; without an ERP connection opened invoices wait for one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from sync.pipeline.billing.candidates import CandidateCounts, invoice_candidates_build
from sync.pipeline.billing.erp_invoices import billing_invoices_number_learn, erp_invoices_offer
from sync.pipeline.billing.issue import invoice_candidates_offer
from sync.pipeline.connection_services import erp_connection_get
from sync.pipeline.models import Connection, SyncRun
from sync.pipeline.models.connections import System

logger = logging.getLogger(__name__)

FLOW = "billing"  # its key in the cycle's counts per flow


def billing_connection_get() -> Connection | None:
    """The enabled billing connection invoices are issued in (the first, if several)."""
    return Connection.objects.filter(enabled=True, system=System.BILLING).order_by("id").first()


def _counts(run: SyncRun) -> dict[str, int]:
    flows = getattr(run, "flow_counts", None)
    if flows is None:
        flows = run.flow_counts = {}
    return flows.setdefault(FLOW, {})


def billing_cycle_run(*, run: SyncRun, now: dt.datetime | None = None) -> int:
    """Build the candidates `now`'s completed months and milestones call for (actor: the run)
    and enqueue the invoice of every pending candidate. Idempotent: a second call over the same
    data creates and enqueues nothing. Returns how many deliveries it enqueued; adds its
    counts to `run.flow_counts["billing"]`."""
    now = now or timezone.now()
    try:
        built = invoice_candidates_build(
            today=timezone.localdate(now), actor=f"run:{run.pk}", run_id=run.pk
        )
    except IntegrityError as exc:
        # Another cycle linked one of the same records first (a unique link): its candidates
        # stand, this build rolled back whole; the next cycle builds whatever is left.
        logger.info("invoice candidates raced another cycle: %s", exc)
        built = CandidateCounts()
    counts = _counts(run)
    counts["candidates"] = counts.get("candidates", 0) + built.candidates
    counts["records billed"] = counts.get("records billed", 0) + built.sources
    billing = billing_connection_get()
    if billing is None:
        logger.warning("no enabled billing connection: invoice candidates wait, pending")
        return 0
    issued = invoice_candidates_offer(billing=billing, now=now, run_id=run.pk)
    counts["invoices to billing"] = counts.get("invoices to billing", 0) + issued.enqueued
    counts["waiting for their customer"] = issued.waiting
    return issued.enqueued


def billing_follow_up(
    *,
    run: SyncRun,
    now: dt.datetime | None = None,
    transport_for: Callable[[Connection], Any] | None = None,
) -> int:
    """Open the invoices billing has numbered, and enqueue the ERP invoice of every open one
    the ERP lacks. Idempotent. Returns how many deliveries it enqueued.
    `transport_for(connection)` replaces the network (tests: the in-process sandbox)."""
    now = now or timezone.now()
    billing = billing_connection_get()
    if billing is None:
        return 0
    counts = _counts(run)
    opened = billing_invoices_number_learn(
        billing=billing,
        actor=f"run:{run.pk}",
        transport=transport_for(billing) if transport_for is not None else None,
        now=now,
    )
    counts["invoices numbered"] = counts.get("invoices numbered", 0) + opened
    erp = erp_connection_get()
    if erp is None:
        return 0
    enqueued = erp_invoices_offer(erp=erp, now=now)
    counts["invoices to the ERP"] = counts.get("invoices to the ERP", 0) + enqueued
    return enqueued
