"""What the targets already hold, by our key: ERP time bills pulled into TargetRecords, linked to
the canonical time entries they post, and the look-up time posting makes before it posts.

The firm's ERP holds timeBills keyed `KT-TE-<PSA time entry id>` for time posted before
Ledgerbridge was linked, the same key time posting upserts under. Knowing them lets time
posting record that history as already posted instead of parking it (closed periods).

- `time_bills_process`: the (erp, timeBill) inbox flow. Idempotent.
- `target_records_upsert`: write what a target told us (a pull or a delivery's answer).
- `target_records_known`: our key → the target's id, for a batch of keys, in one query.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.utils import timezone

from sync.audit import audited_bulk_create
from sync.integrations.netsuite import time_bills
from sync.integrations.netsuite.time_bills import TimeBill, time_bill_read
from sync.models import ExternalRef, TimeEntry
from sync.pipeline.connection_services import erp_connection_get
from sync.pipeline.models import Connection, SyncRun, TargetRecord
from sync.pipeline.models.exception_items import Queue
from sync.pipeline.processing import Batch, Flow, Item, ProcessCounts, batch_process

SYSTEM = "erp"


# --- reads and writes of TargetRecord ------------------------------------------------------------


def target_records_known(
    *, connection: Connection | int, record_type: str, external_ids: Collection[str]
) -> dict[str, str]:
    """{our key: the target's id} for those of `external_ids` the target is known to hold.

    One query (none for no keys); keys the target does not hold are absent.
    """
    if not external_ids:
        return {}
    return dict(
        TargetRecord.objects.filter(
            connection=connection,
            record_type=record_type,
            external_id__any=list(external_ids),
        ).values_list("external_id", "target_id")
    )


def target_records_upsert(
    *,
    connection: Connection | int,
    record_type: str,
    known: Mapping[str, str],
    source: str,
    now: dt.datetime | None = None,
) -> int:
    """Record that the target holds `known` (our key → its id), learned by `source` at `now`.

    One INSERT … ON CONFLICT DO UPDATE (on SQLite one per ~160 rows): a key the target already
    had gets the new id, source and time. Idempotent. Returns how many rows were written.
    """
    if not known:
        return 0
    now = now or timezone.now()
    connection_id = connection if isinstance(connection, int) else connection.pk
    TargetRecord.objects.bulk_create(
        [
            TargetRecord(
                connection_id=connection_id,
                record_type=record_type,
                external_id=external_id,
                target_id=target_id,
                source=source,
                seen_at=now,
            )
            for external_id, target_id in known.items()
        ],
        update_conflicts=True,
        unique_fields=["connection", "record_type", "external_id"],
        update_fields=["target_id", "source", "seen_at"],
    )
    return len(known)


# --- the (erp, timeBill) processor ---------------------------------------------------------------


def time_bills_process(
    *, inbox_ids: Sequence[int], run: SyncRun, now: dt.datetime | None = None
) -> ProcessCounts:
    """Process pending ERP timeBill inbox items as one batch (sync.pipeline.processing).

    Every bill with an externalId becomes (or refreshes) a TargetRecord of its connection (an
    item stored without one belongs to the enabled ERP connection). A bill keyed
    `KT-TE-<PSA id>` whose time entry Ledgerbridge has links the entry to the bill with an
    ExternalRef(erp, internal id), written with history (actor = the run); a link that would
    contradict an existing one is a REFERENCE_CONFLICT for integration ops, an unreadable row
    MALFORMED_PAYLOAD, a bill with no connection to hold it CONNECTION_UNKNOWN; each parks its
    item for a replay. The newest payload of a bill in the batch wins; older ones are marked
    processed.

    Idempotent: the same rows again write nothing. A fixed number of queries per batch. One
    transaction: a database error rolls the batch back and leaves its items pending.
    """
    return batch_process(flow=FLOW, inbox_ids=inbox_ids, run=run, now=now)


def _bills_write(records: list[tuple[Item, TimeBill]], batch: Batch) -> None:
    """Group the batch's bills by connection and key, then record and link them."""
    # An item stored without its connection (not a pull) belongs to the enabled ERP.
    erp = erp_connection_get() if any(i.connection_id is None for i, _ in records) else None
    default_connection = erp.id if erp is not None else None
    by_id: dict[tuple[int, str], tuple[Item, TimeBill]] = {}
    for item, bill in records:
        connection_id = item.connection_id or default_connection
        if connection_id is None:
            batch.fail(
                item,
                bill.internal_id,
                code="CONNECTION_UNKNOWN",
                queue=Queue.INTEGRATION_OPS,
                category="configuration",
                message="An ERP timeBill reached the inbox without its connection, and no ERP "
                "connection is enabled to hold it.",
                suggested_fix="Enable the ERP connection, then replay.",
            )
            continue
        by_id[connection_id, bill.internal_id] = (item, bill)
    # One ERP record per key: should two bills of a batch claim one key, the later wins.
    by_key: dict[tuple[int, str], tuple[Item, TimeBill]] = {}
    for (connection_id, _), (item, bill) in by_id.items():
        if bill.external_id is None:
            batch.counts.unchanged += 1  # not ours to track
            batch.passed.append(batch.record_key(bill.internal_id))
            continue
        by_key[connection_id, bill.external_id] = (item, bill)
    if by_key:
        _apply(by_key, batch=batch)


FLOW = Flow(
    system=SYSTEM,
    entity=time_bills.RECORD_TYPE,
    record=time_bills.RECORD_TYPE,
    read=time_bill_read,
    write=_bills_write,
    what=f"a {time_bills.RECORD_TYPE} record",
    identity=None,  # the newest per (connection, bill): `_bills_write` groups them
)


def _apply(by_key: dict[tuple[int, str], tuple[Item, TimeBill]], *, batch: Batch) -> None:
    """Upsert the batch's TargetRecords and link time entries (see time_bills_process)."""
    counts = batch.counts
    stored = {
        (connection_id, external_id): (target_id, source)
        for connection_id, external_id, target_id, source in TargetRecord.objects.filter(
            connection_id__in={c for c, _ in by_key},
            record_type=time_bills.RECORD_TYPE,
            external_id__any=sorted({e for _, e in by_key}),
        ).values_list("connection_id", "external_id", "target_id", "source")
    }
    to_write: dict[int, dict[str, str]] = defaultdict(dict)
    changed: set[tuple[int, str]] = set()
    for key, (_, bill) in by_key.items():
        before = stored.get(key)
        if before != (bill.internal_id, TargetRecord.Source.PULLED):
            to_write[key[0]][key[1]] = bill.internal_id
            changed.add(key)
            if before is None:
                counts.created += 1
            else:
                counts.updated += 1
    for connection_id, known in to_write.items():
        target_records_upsert(
            connection=connection_id,
            record_type=time_bills.RECORD_TYPE,
            known=known,
            source=TargetRecord.Source.PULLED,
            now=batch.now,
        )
    linked = _links_write(by_key, batch=batch)
    for key, (item, bill) in by_key.items():
        if key in linked and key not in changed:
            counts.updated += 1  # newly linked to its time entry
        elif key not in changed:
            counts.unchanged += 1
        if item.id not in batch.parked:
            batch.passed.append(batch.record_key(bill.internal_id))


def _links_write(
    by_key: dict[tuple[int, str], tuple[Item, TimeBill]], *, batch: Batch
) -> set[tuple[int, str]]:
    """Link each bill keyed by a known PSA time entry to that entry (ExternalRef erp → the
    bill's internal id). Returns the keys newly linked. Three queries, plus two to write."""
    prefix = time_bills.KEY_PREFIX
    psa_ids = {
        key: bill.external_id.removeprefix(prefix)
        for key, (_, bill) in by_key.items()
        if bill.external_id.startswith(prefix) and len(bill.external_id) > len(prefix)
    }
    if not psa_ids:
        return set()
    entry_type = ContentType.objects.get_for_model(TimeEntry)
    entries = {
        psa_id: str(pk)
        for psa_id, pk in TimeEntry.objects.filter(
            psa_id__any=sorted(set(psa_ids.values()))
        ).values_list("psa_id", "pk")
    }
    bills = {key: entries[psa_id] for key, psa_id in psa_ids.items() if psa_id in entries}
    if not bills:
        return set()
    bill_of_entry: dict[str, str] = {}
    entry_of_bill: dict[str, str] = {}
    for object_id, external_id in ExternalRef.objects.filter(
        Q(object_id__any=sorted(set(bills.values())))
        | Q(external_id__any=sorted({by_key[key][1].internal_id for key in bills})),
        system=SYSTEM,
        content_type=entry_type,
    ).values_list("object_id", "external_id"):
        bill_of_entry[object_id] = external_id
        entry_of_bill[external_id] = object_id
    new_refs: list[ExternalRef] = []
    linked: set[tuple[int, str]] = set()
    for key, entry_pk in bills.items():
        item, bill = by_key[key]
        has = bill_of_entry.get(entry_pk)
        holder = entry_of_bill.get(bill.internal_id)
        if has == bill.internal_id and holder == entry_pk:
            continue  # linked already
        if has is not None or holder is not None:
            _conflict(batch, item, bill, entry_pk=entry_pk, has=has, holder=holder)
            continue
        # Claimed now, so a second bill of the batch naming this entry or id conflicts.
        bill_of_entry[entry_pk] = bill.internal_id
        entry_of_bill[bill.internal_id] = entry_pk
        new_refs.append(
            ExternalRef(
                system=SYSTEM,
                content_type=entry_type,
                object_id=entry_pk,
                external_id=bill.internal_id,
                last_synced_at=batch.now,
            )
        )
        linked.add(key)
    if new_refs:
        audited_bulk_create(model=ExternalRef, objs=new_refs, actor=batch.run.actor)
    return linked


def _conflict(
    batch: Batch, item: Item, bill: TimeBill, *, entry_pk: str, has: str | None, holder: str | None
) -> None:
    why = []
    if has is not None and has != bill.internal_id:
        why.append(f"time entry {entry_pk} is linked to ERP timeBill {has}")
    if holder is not None and holder != entry_pk:
        why.append(f"timeBill {bill.internal_id} is linked to time entry {holder}")
    batch.fail(
        item,
        bill.internal_id,
        code="REFERENCE_CONFLICT",
        queue=Queue.INTEGRATION_OPS,
        category="technical",
        message=f"ERP timeBill {bill.internal_id} ({bill.external_id}) cannot be linked to "
        f"time entry {entry_pk}: {' and '.join(why)}.",
        suggested_fix="Find which bill in the ERP is the entry's posting (one may have been "
        "deleted and posted again), correct the cross-reference, then replay.",
        cause=f"{SYSTEM}:TimeEntry:{entry_pk}",
        detail={"time_entry": entry_pk, "linked_bill": has, "bill_linked_to": holder},
    )
