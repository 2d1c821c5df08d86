"""Lifecycle service: move one canonical record to another status, serialised by a row lock."""

from __future__ import annotations

from typing import TypeVar

from django.db import transaction

from sync.audit import acting_as
from sync.models.base import CanonicalModel

RecordT = TypeVar("RecordT", bound=CanonicalModel)


def record_transition(*, record: RecordT, to: str, actor: str) -> RecordT:
    """Move `record` to status `to` as `actor` and return the saved row (a fresh instance).

    The history row names `actor` (`user:alice`, `run:42`, ...; ValueError, nothing written,
    if it does not read `<kind>:<who>`), unless a request user is known, as everywhere.

    Inside `transaction.atomic` the row is re-read with `select_for_update`, so concurrent
    transitions of the same record queue up and each is checked against the status actually
    stored. Raises IllegalTransition (nothing written) when the model's TRANSITIONS do not allow
    the move, and `DoesNotExist` when the row is gone. Moving to the current status is a no-op
    that writes nothing and keeps the version (idempotent for replays). Field values changed on
    `record` in memory are NOT saved: only the status moves. The caller's instance is left as
    it was; use the returned one.
    """
    model = type(record)
    with acting_as(actor), transaction.atomic():
        locked = model._base_manager.select_for_update().get(pk=record.pk)
        if getattr(locked, model.STATUS_FIELD) == to:
            return locked
        from_status = getattr(locked, model.STATUS_FIELD)
        setattr(locked, model.STATUS_FIELD, to)
        # TRANSITIONS name only valid statuses (a system check), so an unknown `to` fails here too.
        locked.lifecycle_check(from_status=from_status)
        locked.save(update_fields=[model.STATUS_FIELD])
    return locked
