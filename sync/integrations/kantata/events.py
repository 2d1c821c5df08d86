"""Kantata approval events (the signed webhooks' bodies) read strictly into `ApprovalEvent`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sync.errors import PayloadError

# What each approval event type approves: the PSA entity, which is also the inbox entity the
# approved record is stored under.
SUBJECT_ENTITIES = {"time_entry.approved": "time_entries", "expense.approved": "expenses"}
MAX_ID = 255


@dataclass(frozen=True)
class ApprovalEvent:
    event_id: str
    event_type: str
    entity: str  # time_entries / expenses
    subject_id: str
    occurred_at: dt.datetime
    subject: dict[str, Any] | None  # the approved record, when the event carries it


def approval_event_read(payload: Any) -> ApprovalEvent:
    """Read one PSA approval event strictly. Raises PayloadError naming every field it refuses.

    Shape (sandbox/kantata/webhooks.py): {"event_id", "event_type": "time_entry.approved" |
    "expense.approved", "subject_type": "time_entries" | "expenses", "subject_id": digits,
    "occurred_at": ISO 8601 with offset}, optionally "subject": the approved record itself.
    """
    if not isinstance(payload, dict):
        raise PayloadError("The event is not a JSON object.")
    errors: list[str] = []
    event_id = _id(payload, "event_id", errors)
    event_type = payload.get("event_type")
    entity = SUBJECT_ENTITIES.get(event_type) if isinstance(event_type, str) else None
    if entity is None:
        errors.append(
            f"`event_type` must be one of {', '.join(SUBJECT_ENTITIES)}, got {_shown(event_type)}."
        )
    subject_type = payload.get("subject_type")
    if entity is not None and subject_type != entity:
        errors.append(
            f"`subject_type` must be {entity!r} for a {event_type} event, "
            f"got {_shown(subject_type)}."
        )
    subject_id = _id(payload, "subject_id", errors)
    if subject_id is not None and not (subject_id.isascii() and subject_id.isdigit()):
        errors.append(f"`subject_id` must be a PSA record id (digits), got {_shown(subject_id)}.")
    occurred_at = _instant(payload.get("occurred_at"), errors)
    subject = payload.get("subject")
    if subject is not None and (
        not isinstance(subject, dict) or str(subject.get("id")) != str(subject_id)
    ):
        errors.append(
            "`subject`, when sent, must be the approved record with the id `subject_id` names."
        )
    if errors:
        raise PayloadError(" ".join(errors))
    return ApprovalEvent(
        event_id=event_id,
        event_type=event_type,
        entity=entity,
        subject_id=subject_id,
        occurred_at=occurred_at,
        subject=subject,
    )


def _shown(value: Any) -> str:
    return repr(value)[:60]


def _id(payload: dict[str, Any], name: str, errors: list[str]) -> str | None:
    value = payload.get(name)
    if value is None or value == "":
        errors.append(f"`{name}` is missing.")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        errors.append(f"`{name}` must be an id (text or integer), got {type(value).__name__}.")
        return None
    text = str(value)
    if len(text) > MAX_ID:
        errors.append(f"`{name}` is {len(text)} characters long; at most {MAX_ID}.")
        return None
    return text


def _instant(value: Any, errors: list[str]) -> dt.datetime | None:
    parsed = None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None or parsed.tzinfo is None:
        errors.append(
            f"`occurred_at` must be an ISO 8601 time with its offset, got {_shown(value)}."
        )
        return None
    return parsed
