"""Exception queue services: raise items in bulk, and the actions people take on them.

Every action writes a history row naming the acting user (simple-history), so the item's
history is its audit trail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from sync.audit import acting_as, actor_for_user, current_actor
from sync.errors import DomainError
from sync.pipeline.models import ExceptionComment, ExceptionItem
from sync.pipeline.models.exception_items import Queue

# How long each queue has to resolve an item before it is past its SLA.
SLA_HOURS = {
    Queue.CUSTOMER_MASTER: 48,
    Queue.PROJECT_SETUP: 24,
    Queue.TIME_AND_EXPENSE: 24,
    Queue.BILLING: 24,
    Queue.TAX: 48,
    Queue.INTEGRATION_OPS: 4,
    Queue.MAPPING: 24,
}


RECORD_KEY_MAX = 255  # ExceptionItem.record_key
LEGAL_ENTITY_MAX = 20  # ExceptionItem.legal_entity, as sync.LegalEntity.code


def record_key_fit(key: str) -> str:
    """`key` as stored: unchanged up to 255 characters; a longer one (a 255-character external id
    behind its `system:entity:` prefix) keeps its first 190 characters and the SHA-256 of the
    whole, so that it still names one record and never fails the batch's insert."""
    if len(key) <= RECORD_KEY_MAX:
        return key
    return f"{key[:190]}#{hashlib.sha256(key.encode()).hexdigest()}"


class ExceptionActionRefused(DomainError):
    """The action does not apply to the item in its current state."""


@dataclass(frozen=True)
class Failure:
    """What a pipeline stage reports about one record it could not take further."""

    record_key: str
    stage: str
    queue: str
    code: str
    message: str
    category: str = "business"
    suggested_fix: str = ""
    cause: str = ""  # the offending reference (a project code, a period): groups root causes
    detail: dict[str, Any] = field(default_factory=dict)
    payload: dict[str, Any] = field(default_factory=dict)
    money_at_risk: Decimal | None = None
    currency: str = ""
    # The code of the legal entity the record belongs to, where the raiser knows it from what
    # it loaded anyway (blank otherwise): people assigned to some entities see their items.
    legal_entity: str = ""
    correlation_id: str = ""
    inbox_item_id: int | None = None
    delivery_id: int | None = None


def root_cause_signature(*, queue: str, code: str, cause: str) -> str:
    return hashlib.sha256(f"{queue}|{code}|{cause}".encode()).hexdigest()[:16]


def exception_items_raise(
    *, failures: Sequence[Failure], run_id: int | None = None, now: datetime | None = None
) -> list[ExceptionItem]:
    """Open an item per failure, or update the open item of the same (record, stage).

    Idempotent per (record key, stage): a re-run adds an occurrence, never a second open item.
    Two queries to find existing items and two bulk writes, whatever the number of failures.
    """
    if not failures:
        return []
    now = now or timezone.now()
    by_key: dict[tuple[str, str], Failure] = {}
    for failure in failures:
        # The first failure of a record at a stage is the one to fix first (rules come in
        # fixing order); later ones for the same record and stage do not replace it.
        by_key.setdefault((record_key_fit(failure.record_key), failure.stage), failure)
    for attempt in range(RAISE_ATTEMPTS):
        try:
            return _raise_once(by_key, run_id=run_id, now=now)
        except IntegrityError:
            # Another worker opened an item for one of these records between our read and our
            # insert; the savepoint rolled our part back: read again and update theirs.
            if attempt == RAISE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


RAISE_ATTEMPTS = 3


def _raise_once(
    by_key: dict[tuple[str, str], Failure], *, run_id: int | None, now: datetime
) -> list[ExceptionItem]:
    with transaction.atomic():
        existing = {
            (item.record_key, item.stage): item
            for item in ExceptionItem.objects.select_for_update()
            .filter(
                record_key__any={k for k, _ in by_key},
                status__in=ExceptionItem.OPEN_STATUSES,
            )
            .order_by("pk")
        }
        to_update, to_create = [], []
        for key, failure in by_key.items():
            values = _item_values(failure, run_id=run_id)
            item = existing.get(key)
            if item is None:
                to_create.append(
                    ExceptionItem(
                        **values,
                        first_failed_at=now,
                        last_failed_at=now,
                        sla_due_at=now + timedelta(hours=SLA_HOURS.get(failure.queue, 24)),
                    )
                )
            else:
                for name, value in values.items():
                    setattr(item, name, value)
                item.occurrences += 1
                item.last_failed_at = now
                to_update.append(item)
        actor = {"history_actor": _system_actor(run_id)}
        created = bulk_create_with_history(to_create, ExceptionItem, custom_historical_attrs=actor)
        if to_update:
            bulk_update_with_history(
                to_update,
                ExceptionItem,
                fields=[*_ITEM_FIELDS, "occurrences", "last_failed_at"],
                batch_size=500,
                custom_historical_attrs=actor,
            )
    return [*created, *to_update]


def _system_actor(run_id: int | None) -> str:
    return current_actor() or (f"run:{run_id}" if run_id else "system:pipeline")


_ITEM_FIELDS = (
    "record_key",
    "stage",
    "queue",
    "code",
    "category",
    "message",
    "suggested_fix",
    "detail",
    "payload",
    "money_at_risk",
    "currency",
    "correlation_id",
    "inbox_item_id",
    "delivery_id",
    "run_id",
    "root_cause",
    "cause",
    "legal_entity",
)


def _item_values(failure: Failure, *, run_id: int | None) -> dict[str, Any]:
    return {
        "record_key": record_key_fit(failure.record_key),
        "stage": failure.stage,
        "queue": failure.queue,
        "code": failure.code,
        "category": failure.category,
        "message": failure.message,
        "suggested_fix": failure.suggested_fix,
        "detail": failure.detail,
        "payload": failure.payload,
        "money_at_risk": failure.money_at_risk,
        "currency": failure.currency,
        "correlation_id": failure.correlation_id,
        "inbox_item_id": failure.inbox_item_id,
        "delivery_id": failure.delivery_id,
        "run_id": run_id,
        "root_cause": root_cause_signature(
            queue=failure.queue, code=failure.code, cause=failure.cause
        ),
        "cause": failure.cause[:255],
        "legal_entity": (failure.legal_entity or "")[:LEGAL_ENTITY_MAX],
    }


def exception_items_close_for(*, record_keys: Sequence[str], stage: str, reason: str) -> int:
    """Resolve open items of records that have now passed `stage` (e.g. a replay succeeded)."""
    with transaction.atomic():
        return _close_for(record_keys=record_keys, stage=stage, reason=reason)


def _close_for(*, record_keys: Sequence[str], stage: str, reason: str) -> int:
    items = list(
        ExceptionItem.objects.select_for_update()
        .filter(
            record_key__any=[record_key_fit(key) for key in record_keys],
            stage=stage,
            status__in=ExceptionItem.OPEN_STATUSES,
        )
        .order_by("pk")
    )
    now = timezone.now()
    for item in items:
        item.status = ExceptionItem.Status.RESOLVED
        item.reason = reason
        item.closed_at = now
    if items:
        bulk_update_with_history(
            items,
            ExceptionItem,
            fields=["status", "reason", "closed_at"],
            batch_size=500,
            custom_historical_attrs={"history_actor": _system_actor(None)},
        )
    return len(items)


def _locked(item: ExceptionItem) -> ExceptionItem:
    return ExceptionItem.objects.select_for_update().get(pk=item.pk)


def exception_item_assign(*, item: ExceptionItem, assignee: Any, user: Any) -> ExceptionItem:
    with transaction.atomic(), acting_as(actor_for_user(user)):
        item = _locked(item)
        if not item.is_open:
            raise ExceptionActionRefused(f"Item {item.pk} is {item.status}: reopen it first.")
        item.assignee = assignee
        item.status = ExceptionItem.Status.IN_PROGRESS
        item._history_user = user
        item.save()
    return item


def exception_item_comment(*, item: ExceptionItem, body: str, user: Any) -> ExceptionComment:
    body = body.strip()
    if not body:
        raise ExceptionActionRefused("A comment needs some text.")
    with acting_as(actor_for_user(user)):
        comment = ExceptionComment(item=item, author=user, body=body)
        comment._history_user = user
        comment.full_clean()
        comment.save()
    return comment


def _close(*, item: ExceptionItem, status: str, reason: str, user: Any) -> ExceptionItem:
    reason = reason.strip()
    if not reason:
        raise ExceptionActionRefused("Say why: a reason is required.")
    with transaction.atomic(), acting_as(actor_for_user(user)):
        item = _locked(item)
        if not item.is_open:
            raise ExceptionActionRefused(f"Item {item.pk} is already {item.status}.")
        item.status = status
        item.reason = reason
        item.closed_at = timezone.now()
        item._history_user = user
        item.save()
    return item


def exception_items_close(
    *, items: Sequence[ExceptionItem], status: str, reason: str, user: Any
) -> int:
    """Resolve or ignore many open items at once, with one reason: one locked read and one bulk
    write with history naming `user`. Items already closed are left alone. Returns how many
    were closed. Raises ExceptionActionRefused without a reason or for another status."""
    reason = reason.strip()
    if not reason:
        raise ExceptionActionRefused("Say why: a reason is required.")
    if status not in (ExceptionItem.Status.RESOLVED, ExceptionItem.Status.IGNORED):
        raise ExceptionActionRefused(f"Items are closed as resolved or ignored, not {status}.")
    now = timezone.now()
    with transaction.atomic():
        locked = list(
            ExceptionItem.objects.select_for_update()
            .filter(pk__in=[i.pk for i in items], status__in=ExceptionItem.OPEN_STATUSES)
            .order_by("pk")
        )
        for item in locked:
            item.status, item.reason, item.closed_at = status, reason, now
        if not locked:
            return 0
        bulk_update_with_history(
            locked,
            ExceptionItem,
            fields=["status", "reason", "closed_at"],
            batch_size=500,
            default_user=user,
            custom_historical_attrs={"history_actor": actor_for_user(user)},
        )
    return len(locked)


def exception_item_resolve(*, item: ExceptionItem, reason: str, user: Any) -> ExceptionItem:
    return _close(item=item, status=ExceptionItem.Status.RESOLVED, reason=reason, user=user)


def exception_item_ignore(*, item: ExceptionItem, reason: str, user: Any) -> ExceptionItem:
    return _close(item=item, status=ExceptionItem.Status.IGNORED, reason=reason, user=user)
