"""Inbox services: store every inbound payload before anything processes it."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.utils import timezone

from sync.pipeline.models import Connection, InboxItem


@dataclass(frozen=True)
class InboxStored:
    new: list[InboxItem]
    skipped: int


def payload_hash(payload: Any) -> str:
    """A stable hash of a JSON payload (key order does not matter)."""
    try:
        text = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits, which JSON allows and orjson cannot write
        text = json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    return hashlib.sha256(text).hexdigest()


def inbox_store(
    *,
    system: str,
    entity: str,
    records: Iterable[tuple[str, dict[str, Any]]],
    connection: Connection | None = None,
    run_id: int | None = None,
    correlation_id: str | None = None,
    now: datetime | None = None,
) -> InboxStored:
    """Store (external id, payload) records; a payload equal to the latest one stored for the
    same record is skipped (a value that changes back to an earlier one is stored again).

    Idempotent: storing the same page twice adds nothing the second time. One query to read
    the latest hash per record and one bulk insert. Two concurrent writers of the same new
    payload may both store it: processing is idempotent, so the duplicate changes nothing.
    Returns exactly the rows this call wrote, in id order.
    """
    now = now or timezone.now()
    batch_id = uuid.uuid4()
    rows: dict[str, InboxItem] = {}
    for external_id, payload in records:
        digest = payload_hash(payload)
        # Within one page the last payload of a record wins.
        rows[str(external_id)] = InboxItem(
            connection=connection,
            system=system,
            entity=entity,
            external_id=str(external_id),
            payload=payload,
            payload_hash=digest,
            received_at=now,
            run_id=run_id,
            correlation_id=correlation_id or uuid.uuid4().hex,
            batch_id=batch_id,
        )
    if not rows:
        return InboxStored(new=[], skipped=0)
    latest: dict[str, str] = {}
    for external_id, digest in (
        InboxItem.objects.filter(system=system, entity=entity, external_id__any=list(rows))
        .order_by("id")
        .values_list("external_id", "payload_hash")
    ):
        latest[external_id] = digest
    fresh = [item for ext, item in rows.items() if latest.get(ext) != item.payload_hash]
    # PostgreSQL and SQLite (3.35+) return the new ids: the stored rows need no read-back.
    stored = sorted(InboxItem.objects.bulk_create(fresh, batch_size=1000), key=lambda i: i.pk)
    return InboxStored(new=stored, skipped=len(rows) - len(stored))
