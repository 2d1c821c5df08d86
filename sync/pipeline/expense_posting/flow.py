"""Approved PSA expenses → canonical Expense → one ERP expense report each, or an exception.

One batch, one transaction (the processing protocol, sync.pipeline.processing), as time
posting (sync.pipeline.time_posting.flow) does it: read every Kantata expense, resolve its
references with a fixed number of queries, map with the published versions effective on its
date (legal entity, currency, expense category), apply field ownership, check the posting rules
(expense_posting.rules), upsert the canonical expenses with history (actor = the run), and
write one outbox delivery per changed version: an upsert of the NetSuite expenseReport keyed
`KT-EX-<PSA id>`. A record that fails becomes an exception item (money at risk = its amount);
nothing is dropped and nothing is half-written.

- New and approved, but the ERP already holds its key (posted before Ledgerbridge, learned from
  the ERP's listing): created as posted and linked, no delivery, whatever the rules say today.
- Approval withdrawn (rejected) after Ledgerbridge took it: approved → rejected, posted →
  reversed, and a new version's delivery upserts the same report as Rejected (decision 91).
- Changed after posting: POSTED_EXPENSE_CHANGED; approved again after a rejection:
  EXPENSE_APPROVED_AGAIN. Neither edits the record.

Idempotent: the same payloads again change nothing (no new version → no new delivery key).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils import timezone

from sync.integrations.kantata.expenses import ParsedExpense, expense_read
from sync.mappings.ownership import ownership_merge
from sync.models import Expense
from sync.models.transactions import ApprovalStatus
from sync.pipeline.expense_posting.references import (
    Preload,
    Resolved,
    expense_references_preload,
    expense_resolve,
)
from sync.pipeline.expense_posting.rules import expense_at_risk, expense_rules_check
from sync.pipeline.expense_posting.writers import OWNED_FIELDS, expenses_create, expenses_update
from sync.pipeline.models import Connection, SyncRun
from sync.pipeline.models.exception_items import Queue, Stage
from sync.pipeline.processing import Batch, Flow, Item, ProcessCounts, batch_process
from sync.pipeline.time_posting.references import SOURCE_SYSTEM

ENTITY = "expense"
INBOX_ENTITY = "expenses"
_WITHDRAWN = {
    ApprovalStatus.APPROVED: ApprovalStatus.REJECTED,
    ApprovalStatus.POSTED: ApprovalStatus.REVERSED,
}
_CLOSED = frozenset({ApprovalStatus.REJECTED, ApprovalStatus.REVERSED})


def expenses_process(
    *, inbox_ids: Sequence[int], run: SyncRun, erp: Connection, now: dt.datetime | None = None
) -> ProcessCounts:
    """Process the given PSA expense inbox items as one batch. See the module docstring.

    Raises nothing for bad records (they become exception items); database errors roll the
    whole batch back, leaving every inbox item pending for the next attempt.
    """
    flow = Flow(
        system=SOURCE_SYSTEM,
        entity=INBOX_ENTITY,
        record=ENTITY,
        read=expense_read,
        write=lambda records, batch: _post(records, batch=batch, erp=erp),
        what="an expense",
        fix="Check the PSA expense (or a schema change on the PSA side), then replay.",
        close_stages=(Stage.VALIDATE,),
        close_reason="Passed validation on replay.",
    )
    return batch_process(flow=flow, inbox_ids=inbox_ids, run=run, now=now or timezone.now())


def _post(records: list[tuple[Item, ParsedExpense]], *, batch: Batch, erp: Connection) -> None:
    """Plan and write the batch: create, link, update, withdraw, or park."""
    counts, now = batch.counts, batch.now
    today = batch.today
    pre = expense_references_preload(parsed=[p for _, p in records], today=today, erp=erp)
    to_create: list[tuple[Item, ParsedExpense, Resolved]] = []
    to_link: list[tuple[Item, ParsedExpense, Resolved]] = []
    to_update: list[tuple[Item, ParsedExpense, Expense, Resolved]] = []
    for item, p in records:
        existing = pre.existing.get(p.external_id)
        resolved = expense_resolve(p, pre)
        if not p.approved:
            withdrawn = _withdrawn(batch, item, p, existing, resolved)
            if withdrawn is None:
                counts.unchanged += 1  # never ours, or withdrawn already
            elif withdrawn:
                to_update.append((item, p, existing, resolved))
            continue
        if existing is not None and existing.status in _CLOSED:
            _fail(
                batch,
                item,
                p,
                code="EXPENSE_APPROVED_AGAIN",
                message=f"The PSA approved expense {p.external_id} again after it was "
                f"{existing.status}; its ERP report stays rejected.",
                fix="Enter the expense in the PSA as a new one, or reject it again.",
                detail={"status": existing.status},
            )
            continue
        if (
            existing is None
            and p.external_id in pre.posted
            and resolved.project
            and resolved.worker
            and p.currency in pre.currencies
        ):
            # Already in the ERP under our key (posted before Ledgerbridge): recorded as posted
            # and linked, never posted again, whatever the rules (a period closed since) say.
            to_link.append((item, p, resolved))
            batch.passed.append(batch.record_key(p.external_id))
            continue
        broken = expense_rules_check(
            resolved.facts, category=p.category, category_mapped=resolved.erp_category is not None
        )
        if broken:
            failure = broken[0]  # one item per record and stage: the first rule to fix
            batch.fail(
                item,
                p.external_id,
                code=failure.rule.code,
                queue=failure.rule.queue,
                message=failure.message,
                suggested_fix=failure.suggested_fix,
                cause=failure.cause,
                detail={"rule": failure.rule.code},
                money_at_risk=expense_at_risk(p.amount),
                currency=p.currency,
            )
            continue
        batch.passed.append(batch.record_key(p.external_id))
        if existing is None:
            to_create.append((item, p, resolved))
            continue
        changed = _changes(batch, item, p, existing, resolved, pre=pre, today=today)
        if not changed:
            counts.unchanged += 1
            continue
        if existing.status in Expense.FROZEN_STATUSES:
            _fail(
                batch,
                item,
                p,
                code="POSTED_EXPENSE_CHANGED",
                message=f"The PSA changed expense {p.external_id} after it was "
                f"{existing.status}: {', '.join(sorted(changed))}.",
                fix="Reject the expense in the PSA (its ERP report is voided) and enter the "
                "correction as a new expense, or undo the change in the PSA.",
                detail={"changed": sorted(changed), "status": existing.status},
            )
            continue
        for name, value in changed.items():
            setattr(existing, Expense._meta.get_field(name).attname, value)
        to_update.append((item, p, existing, resolved))

    if to_create:
        counts.deliveries += expenses_create(to_create, run=batch.run, erp=erp, now=now, pre=pre)
        counts.created += len(to_create)
    if to_link:
        expenses_create(to_link, run=batch.run, erp=erp, now=now, pre=pre, already_posted=True)
        counts.created += len(to_link)
        counts.linked += len(to_link)
    if to_update:
        counts.deliveries += expenses_update(to_update, run=batch.run, erp=erp, now=now, pre=pre)
        counts.updated += len(to_update)


def _withdrawn(
    batch: Batch, item: Item, p: ParsedExpense, existing: Expense | None, resolved: Resolved
) -> bool | None:
    """An expense the PSA no longer shows as approved. None: nothing to do (never approved
    here, or withdrawn already); True: its status moves (approved → rejected, posted →
    reversed) and its report is voided by the update's delivery; False: parked."""
    if existing is None or existing.status not in _WITHDRAWN:
        return None
    if resolved.project is None or resolved.worker is None:
        # The void names the report's employee and project like the report itself.
        _fail(
            batch,
            item,
            p,
            code="WITHDRAWN_EXPENSE_UNRESOLVED",
            message=f"The PSA withdrew its approval of expense {p.external_id}, but its "
            "project or worker is no longer linked here, so its ERP report cannot be voided.",
            fix="Restore the PSA workspace or user link, then replay; or void the report "
            f"{p.external_id} in the ERP by hand.",
            detail={"status": existing.status},
        )
        return False
    existing.status = _WITHDRAWN[existing.status]
    batch.passed.append(batch.record_key(p.external_id))
    return True


def _fail(batch: Batch, item: Item, p: ParsedExpense, *, code, message, fix, detail) -> None:
    batch.fail(
        item,
        p.external_id,
        code=code,
        queue=Queue.TIME_AND_EXPENSE,
        message=message,
        suggested_fix=fix,
        detail=detail,
        money_at_risk=expense_at_risk(p.amount),
        currency=p.currency,
    )


def _changes(
    batch: Batch,
    item: Item,
    p: ParsedExpense,
    existing: Expense,
    resolved: Resolved,
    *,
    pre: Preload,
    today: dt.date,
) -> dict:
    """The PSA's changes to an existing expense that field ownership lets through (the refused
    ones are reported, FIELD_OWNED_ELSEWHERE, the item not parked), and new mapping versions."""
    incoming = {
        "incurred_date": p.incurred_date,
        "amount": p.amount,
        "billable": p.billable,
        "currency": p.currency,
        "psa_category": p.category,
    }
    attnames = {name: Expense._meta.get_field(name).attname for name in OWNED_FIELDS}
    current = {name: getattr(existing, attnames[name]) for name in OWNED_FIELDS}
    merge = ownership_merge(
        entity=ENTITY,
        current=current,
        incoming=incoming,
        source_system=SOURCE_SYSTEM,
        book=pre.ownership,
        on=today,
    )
    for refused in merge.refused:
        batch.refuse_field(
            item, p.external_id, refused=refused, entity=ENTITY, queue=Queue.TIME_AND_EXPENSE
        )
    changed = dict(merge.applied)
    # A posted report keeps the versions it was posted with: a mapping published since is no
    # change to the expense.
    frozen = existing.status in Expense.FROZEN_STATUSES
    if not frozen and resolved.versions != existing.mapping_versions:
        changed["mapping_versions"] = resolved.versions
    return changed
