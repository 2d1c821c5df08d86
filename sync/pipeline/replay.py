"""Replay and retry from the exception queues: the actions that send a fixed record on its way.

- replay: the record failed before delivery (parse, map, ownership, validation). Its inbox item
  re-enters the same processor, now with the currently published mappings and reference data.
  If it passes, the processor resolves the open item; if not, the item stays open with one more
  occurrence.
- retry: the record failed at delivery. The delivery is sent again with a fresh attempt budget,
  under the same idempotency key and external id (so the target cannot get it twice).

Every action writes a history row on the item naming the person who took it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from sync.audit import acting_as, actor_for_user
from sync.pipeline.connection_services import erp_connection_get
from sync.pipeline.cycle import processing_registry
from sync.pipeline.exception_items import ExceptionActionRefused
from sync.pipeline.models import Delivery, ExceptionItem, InboxItem, SyncRun
from sync.pipeline.outbox.claims import delivery_retry

REPLAY_GROUP_LIMIT = 5000


@dataclass(frozen=True)
class ReplayResult:
    items: int
    resolved: int
    still_open: int


def _note(item: ExceptionItem, *, user: Any, reason: str) -> None:
    """Audit the action on the item itself (a history row with the person and what they did)."""
    with acting_as(actor_for_user(user)):
        item.status = ExceptionItem.Status.IN_PROGRESS
        item.reason = reason
        item._history_user = user
        item.save(update_fields=["status", "reason"])


def exception_items_replay(*, items: list[ExceptionItem], user: Any) -> ReplayResult:
    """Replay or retry each open item; returns how many are now resolved. Idempotent: an item
    already resolved is left alone."""
    items = [i for i in items if i.is_open]
    inbox_ids: dict[tuple[str, str], list[int]] = {}
    for item in items:
        if item.delivery_id:
            with transaction.atomic():
                _note(item, user=user, reason="Retried from the exception queue.")
                delivery = Delivery.objects.get(pk=item.delivery_id)
                if delivery.state == Delivery.State.FAILED:
                    delivery_retry(delivery=delivery)
        elif item.inbox_item_id:
            _note(item, user=user, reason="Replayed from the exception queue.")
            inbox = InboxItem.objects.get(pk=item.inbox_item_id)
            inbox_ids.setdefault((inbox.system, inbox.entity), []).append(inbox.pk)
        else:
            raise ExceptionActionRefused(
                f"Item {item.pk} has no inbox item or delivery to replay: fix and resolve it."
            )
    if inbox_ids:
        processors, _ = processing_registry(erp=erp_connection_get())
        run = SyncRun.objects.create(kind=SyncRun.Kind.REPLAY, started_at=timezone.now())
        for key, ids in inbox_ids.items():
            processor = processors.get(key)
            if processor is None:
                raise ExceptionActionRefused(f"Nothing processes {key[0]} {key[1]} records.")
            InboxItem.objects.filter(pk__in=ids).update(status=InboxItem.Status.PENDING)
            processor(inbox_ids=ids, run=run)
        run.status = SyncRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "finished_at"])
    fresh = ExceptionItem.objects.filter(pk__in=[i.pk for i in items])
    resolved = fresh.filter(status=ExceptionItem.Status.RESOLVED).count()
    return ReplayResult(items=len(items), resolved=resolved, still_open=len(items) - resolved)


def exception_item_replay(*, item: ExceptionItem, user: Any) -> ReplayResult:
    return exception_items_replay(items=[item], user=user)


def exception_items_replay_group(*, root_cause: str, user: Any) -> ReplayResult:
    """Replay every open item sharing one root cause (a hundred items with one fix: one click)."""
    items = list(
        ExceptionItem.objects.filter(
            root_cause=root_cause, status__in=ExceptionItem.OPEN_STATUSES
        ).order_by("pk")[:REPLAY_GROUP_LIMIT]
    )
    return exception_items_replay(items=items, user=user)


@dataclass(frozen=True)
class ReplayPreview:
    """What a replay or retry of one item would send, and whether the target holds it already.

    `kind`: "retry" (a failed delivery is sent again), "replay" (the record re-enters its
    processor with today's mappings) or "none" (nothing to send: fix and resolve it).
    """

    kind: str
    target_key: str = ""  # our key in the target (external id, e.g. KT-TE-1852)
    held_as: str = ""  # the target's own id, when it holds the record already
    held_since: object = None
    lines: tuple[tuple[str, str], ...] = ()
    note: str = ""


def exception_item_replay_preview(*, item: ExceptionItem) -> ReplayPreview:
    """Read-only: what `exception_items_replay` would do with `item` (one lookup per table).

    A target that already holds the record under our key is reported, so a person sees before
    clicking that the replay links to it (time posting links, never posts twice) rather than
    posting a second one.
    """
    from sync.errors import PayloadError
    from sync.integrations.kantata.time_entries import time_entry_read
    from sync.integrations.netsuite import time_bills
    from sync.pipeline.models import TargetRecord
    from sync.pipeline.rules import money_at_risk
    from sync.pipeline.time_posting.flow import RECORD_KEY_PREFIX

    if item.delivery_id:
        delivery = Delivery.objects.filter(pk=item.delivery_id).first()
        if delivery is None:
            return ReplayPreview(kind="none", note="Its delivery is gone: fix and resolve it.")
        held = (
            TargetRecord.objects.filter(
                connection_id=delivery.connection_id, external_id=delivery.external_id
            )
            .order_by("-seen_at")
            .first()
        )
        return ReplayPreview(
            kind="retry",
            target_key=delivery.external_id,
            held_as=held.target_id if held else "",
            held_since=held.seen_at if held else None,
            lines=(
                ("operation", delivery.operation),
                ("idempotency key", delivery.idempotency_key),
                ("attempts so far", str(delivery.attempts)),
                ("last error", delivery.last_error[:300]),
            ),
            note="Sent again under the same idempotency key and external id.",
        )
    if not item.inbox_item_id:
        return ReplayPreview(kind="none", note="No inbox item or delivery: fix and resolve it.")
    if not item.record_key.startswith(RECORD_KEY_PREFIX):
        return ReplayPreview(
            kind="replay", note="The record re-enters its processor with today's mappings."
        )
    inbox = InboxItem.objects.filter(pk=item.inbox_item_id).first()
    try:
        parsed = time_entry_read(inbox.payload if inbox else None)
    except PayloadError as exc:
        return ReplayPreview(kind="replay", note=f"The payload cannot be read: {exc}")
    key = time_bills.time_bill_key(parsed.external_id)
    held = (
        TargetRecord.objects.filter(record_type=time_bills.RECORD_TYPE, external_id=key)
        .order_by("-seen_at")
        .first()
    )
    amount = money_at_risk(hours=parsed.hours, bill_rate=parsed.rate)  # half-up, to the cent
    return ReplayPreview(
        kind="replay",
        target_key=key,
        held_as=held.target_id if held else "",
        held_since=held.seen_at if held else None,
        lines=(
            ("work date", parsed.work_date.isoformat()),
            ("hours", f"{parsed.hours}"),
            ("bill rate", f"{parsed.rate} {parsed.currency}"),
            ("billable", "yes" if parsed.billable else "no"),
            ("value", f"{amount:,.2f} {parsed.currency}"),
            (
                "PSA workspace / story / user",
                f"{parsed.workspace_id} / {parsed.story_id} / {parsed.user_id}",
            ),
        ),
        note="Posted as an ERP time bill if every rule passes with today's mappings.",
    )
