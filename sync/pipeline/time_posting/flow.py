"""Approved PSA time entries → canonical TimeEntry → one ERP labour posting each, or an exception.

One batch, one transaction (the processing protocol, sync.pipeline.processing): read every
Kantata payload, resolve references with a fixed number of queries, map with the published
versions effective for each entry's date, apply field ownership, check the business rules,
upsert the canonical records with history (actor = the run), each carrying its PSA id, and
write one outbox delivery per changed record version. A record that fails any step becomes an
exception item in its owner's queue; nothing is dropped and nothing is half-written.

Idempotent: re-processing the same payloads changes nothing (same values → no new version → the
delivery's idempotency key exists already); a changed entry gets a new version and a new
delivery that upserts the same ERP record (external id `KT-TE-<PSA id>`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.utils import timezone

from sync.integrations.kantata.time_entries import ParsedTime, time_entry_read
from sync.mappings.ownership import ownership_merge
from sync.models import TimeEntry
from sync.pipeline.models import Connection, SyncRun
from sync.pipeline.models.exception_items import Queue, Stage
from sync.pipeline.processing import Batch, Flow, Item, ProcessCounts, batch_process
from sync.pipeline.rules import money_at_risk, rules_check
from sync.pipeline.time_posting.references import (
    SOURCE_SYSTEM,
    Preload,
    Resolved,
    time_entry_resolve,
    time_references_preload,
)
from sync.pipeline.time_posting.writers import (
    OWNED_FIELDS,
    time_entries_create,
    time_entries_update,
)

ENTITY = "time_entry"
INBOX_ENTITY = "time_entries"
RECORD_KEY_PREFIX = f"{SOURCE_SYSTEM}:{ENTITY}:"


def time_entries_process(
    *, inbox_ids: Sequence[int], run: SyncRun, erp: Connection, now: dt.datetime | None = None
) -> ProcessCounts:
    """Process the given PSA time-entry inbox items as one batch. See the module docstring.

    Raises nothing for bad records (they become exception items); database errors roll the
    whole batch back, leaving every inbox item pending for the next attempt.
    """
    now = now or timezone.now()
    flow = Flow(
        system=SOURCE_SYSTEM,
        entity=INBOX_ENTITY,
        record=ENTITY,
        read=time_entry_read,
        write=lambda records, batch: _post(records, batch=batch, erp=erp),
        what="a time entry",
        fix="Check the PSA record (or a schema change on the PSA side), then replay.",
        close_stages=(Stage.VALIDATE,),
        close_reason="Passed validation on replay.",
    )
    return batch_process(flow=flow, inbox_ids=inbox_ids, run=run, now=now)


def _post(records: list[tuple[Item, ParsedTime]], *, batch: Batch, erp: Connection) -> None:
    """Plan and write the batch's entries: create, link (already in the ERP), update, or park."""
    counts, now = batch.counts, batch.now
    approved = [(item, p) for item, p in records if p.approved]
    counts.unchanged += len(records) - len(approved)
    if not approved:
        return
    today = now.date()
    pre = time_references_preload(parsed=[p for _, p in approved], today=today, erp=erp)
    to_create: list[tuple[Item, ParsedTime, Resolved]] = []
    # New to Ledgerbridge but already in the ERP under our key: recorded as posted, linked to
    # the ERP's record and not posted again, whatever the posting rules (a closed period, a
    # project closed since) would say today. Only the records it belongs to must exist here.
    to_link: list[tuple[Item, ParsedTime, Resolved]] = []
    to_update: list[tuple[Item, ParsedTime, TimeEntry, Resolved]] = []
    for item, p in approved:
        resolved = time_entry_resolve(p, pre)
        if (
            p.external_id in pre.posted
            and p.external_id not in pre.existing
            and resolved.project
            and resolved.task
            and resolved.worker
            and p.currency in pre.currencies
        ):
            to_link.append((item, p, resolved))
            batch.passed.append(batch.record_key(p.external_id))
            continue
        broken = rules_check(resolved.facts)
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
                money_at_risk=_at_risk(p),
                currency=p.currency,
                legal_entity=_entity(resolved),
            )
            continue
        batch.passed.append(batch.record_key(p.external_id))
        existing = pre.existing.get(p.external_id)
        if existing is None:
            to_create.append((item, p, resolved))
            continue
        changed = _changes(batch, item, p, existing, resolved, pre=pre, today=today)
        if not changed:
            counts.unchanged += 1
            continue
        if existing.status in TimeEntry.FROZEN_STATUSES:
            # Posted time is corrected by a reversal and a new entry, never by an edit.
            batch.fail(
                item,
                p.external_id,
                code="POSTED_ENTRY_CHANGED",
                queue=Queue.TIME_AND_EXPENSE,
                message=(
                    f"The PSA changed time entry {p.external_id} after it was "
                    f"{existing.status}: {', '.join(sorted(changed))}."
                ),
                suggested_fix="Reverse the posted entry in the ERP and book the correction as "
                "a new entry, or undo the change in the PSA.",
                detail={"changed": sorted(changed), "status": existing.status},
                money_at_risk=_at_risk(p),
                currency=p.currency,
                legal_entity=_entity(resolved),
            )
            continue
        for name, value in changed.items():
            setattr(existing, _attname(name), value)
        to_update.append((item, p, existing, resolved))

    if to_create:
        counts.deliveries += time_entries_create(
            to_create, run=batch.run, erp=erp, now=now, pre=pre
        )
        counts.created += len(to_create)
    if to_link:
        time_entries_create(to_link, run=batch.run, erp=erp, now=now, pre=pre, already_posted=True)
        counts.created += len(to_link)
        counts.linked += len(to_link)
    if to_update:
        counts.deliveries += time_entries_update(
            to_update, run=batch.run, erp=erp, now=now, pre=pre
        )
        counts.updated += len(to_update)


def _changes(
    batch: Batch,
    item: Item,
    p: ParsedTime,
    existing: TimeEntry,
    resolved: Resolved,
    *,
    pre: Preload,
    today: dt.date,
) -> dict:
    """The PSA's changes to an existing entry that field ownership lets through (the refused
    ones are reported, FIELD_OWNED_ELSEWHERE, the item not parked), and new mapping versions."""
    incoming = {
        "work_date": p.work_date,
        "hours": p.hours,
        "billable": p.billable,
        "bill_rate": p.rate,
        "currency": p.currency,
    }
    current = {name: getattr(existing, _attname(name)) for name in OWNED_FIELDS}
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
            item,
            p.external_id,
            refused=refused,
            entity=ENTITY,
            queue=Queue.TIME_AND_EXPENSE,
            legal_entity=_entity(resolved),
        )
    changed = dict(merge.applied)
    if resolved.versions != existing.mapping_versions:
        changed["mapping_versions"] = resolved.versions
    return changed


def _entity(resolved: Resolved) -> str:
    """The entry's legal entity: its project's (already loaded), blank for an unknown project."""
    return resolved.project.entity_code if resolved.project else ""


def _at_risk(p: ParsedTime):
    return money_at_risk(hours=p.hours, bill_rate=p.rate) if p.billable else None


def _attname(name: str) -> str:
    return TimeEntry._meta.get_field(name).attname
