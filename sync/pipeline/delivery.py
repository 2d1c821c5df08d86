"""Send due outbox deliveries to their targets through the connectors, concurrently per target.

Claim due deliveries (outbox.claims.deliveries_claim), send each as an upsert by external id (the
target keeps one record per key, so a resend cannot duplicate), resolve indeterminate outcomes
by looking the record up before anything else, and record every outcome (outbox.outcomes decides
retry, failure or success).

How many are in flight at once, and on which threads, is `sender.py`'s business.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sync.connectors.base import INDETERMINATE, TargetConnector, TransportError, correlation_scope
from sync.pipeline.models import Delivery
from sync.pipeline.outbox.claims import deliveries_claim
from sync.pipeline.outbox.outcomes import TRANSIENT, Outcome
from sync.pipeline.sender import SendCounts, Sender


def delivery_send_one(
    *,
    delivery: Delivery,
    connector: TargetConnector,
    numeric_body_fields: Mapping[str, frozenset[str]],
) -> Outcome:
    """Send one delivery as an upsert by external id; never raises for a target failure (it
    becomes the Outcome). `numeric_body_fields`: the body fields, by record type, the target
    wants as JSON numbers (the outbox keeps them as exact decimal strings: JSON has no decimal
    type), sent as Decimal."""
    record_type = delivery.payload["record_type"]
    numeric = numeric_body_fields.get(record_type, frozenset())
    body = {
        name: Decimal(value) if name in numeric and isinstance(value, str) else value
        for name, value in delivery.payload["body"].items()
        if value is not None
    }
    with correlation_scope(delivery.correlation_id):
        try:
            target_id = connector.upsert_by_external_id(
                record_type=record_type,
                external_id=delivery.external_id,
                body=body,
                idempotency_key=delivery.idempotency_key,
            )
            return Outcome(ok=True, target_id=str(target_id))
        except TransportError as error:
            if error.kind != INDETERMINATE:
                return _failed(error)
            # The write may have happened: look before writing again.
            try:
                found = connector.get_by_external_id(
                    record_type=record_type, external_id=delivery.external_id
                )
            except TransportError as lookup_error:
                return _failed(lookup_error, kind=TRANSIENT)
            if found is not None:
                return Outcome(ok=True, target_id=str(found.get("id", "")))
            return _failed(error, kind=TRANSIENT)


def _failed(error: TransportError, *, kind: str | None = None) -> Outcome:
    return Outcome(
        ok=False,
        kind=kind or error.kind,
        status=error.status,
        message=error.message,
        vendor_code=error.vendor_code,
        retry_after=error.retry_after,
    )


def deliveries_send_due(
    *,
    limit: int = 200,
    seconds: float | None = None,
    connector_options: dict[str, Any] | None = None,
) -> SendCounts:
    """Claim up to `limit` due deliveries (and none after `seconds`, when given) and send them,
    keeping up to each connection's `max_concurrency` requests in flight across every sender
    (the connection-wide budget); outcomes are recorded on the calling thread as each request
    completes, and the next deliveries are claimed while others are in flight, so a backlog
    flows without a pause for as long as the call lasts. Safe to run in many workers at once.
    """
    return Sender(
        send=delivery_send_one,
        claim=lambda n: deliveries_claim(limit=n),
        limit=limit,
        seconds=seconds,
        connector_options=connector_options,
    ).run()


def deliveries_send(
    *, delivery_ids: list[int], connector_options: dict[str, Any] | None = None
) -> SendCounts:
    """Send exactly these deliveries now, those of them that are pending and due (a delivery
    another worker holds, or one waiting for its retry time, is left alone), through the same
    connection-wide budget, ahead of any backlog: senders working through one hand their slots
    back while this call waits for one (sender_loops.PRIORITY_CHECK_SECONDS). Idempotent: a
    second call claims nothing already sent."""
    ids = list(dict.fromkeys(delivery_ids))
    if not ids:
        return SendCounts()
    pending = [ids]

    def claim(n: int) -> list[Delivery]:
        if not pending:
            return []
        return deliveries_claim(limit=len(ids), delivery_ids=pending.pop())

    return Sender(
        send=delivery_send_one,
        claim=claim,
        limit=len(ids),
        connector_options=connector_options,
        priority=True,
    ).run()
