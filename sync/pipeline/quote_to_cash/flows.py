"""The quote-to-cash inbox flows a cycle runs, in order: CRM accounts (re-offer the deals parked
on them), opportunities (customer onboarding), contracts (project shells)."""

from __future__ import annotations

from functools import partial

from sync.pipeline.processing import batch_process
from sync.pipeline.quote_to_cash.customers import account_flow, opportunity_flow
from sync.pipeline.quote_to_cash.projects import contract_flow

# (inbox system, inbox entity) → processor `(*, inbox_ids, run, now=None) -> ProcessCounts`.
PROCESSORS = {
    (flow.system, flow.entity): partial(batch_process, flow=flow)
    for flow in (account_flow, opportunity_flow, contract_flow)
}
