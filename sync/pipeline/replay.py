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
from sync.pipeline.cycle import erp_connection_get, processing_registry
from sync.pipeline.exception_items import ExceptionActionRefused
from sync.pipeline.models import Delivery, ExceptionItem, InboxItem, SyncRun
from sync.pipeline.outbox import delivery_retry

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
