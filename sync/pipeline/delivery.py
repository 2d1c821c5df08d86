"""Send due outbox deliveries to their targets through the connectors, concurrently per target.

Claim a batch (outbox.deliveries_claim), send each delivery as an upsert by external id (the
target keeps one record per key, so a resend cannot duplicate), resolve indeterminate outcomes
by looking the record up before anything else, and record every outcome (outbox.py decides
retry, failure or success). Network calls run in threads up to the connection's concurrency;
database writes stay on the calling thread.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sync.connectors.base import INDETERMINATE, ConnectionConfig, TransportError, correlation_scope
from sync.connectors.netsuite import NetSuiteConnector
from sync.pipeline.models import Connection, Delivery
from sync.pipeline.outbox import (
    TRANSIENT,
    Outcome,
    deliveries_claim,
    delivery_outcome_record,
)

logger = logging.getLogger(__name__)

# Body fields a target wants as JSON numbers. The outbox keeps them as exact decimal strings
# (JSON has no decimal type); they become Decimal here and exact numbers on the wire.
NUMERIC_FIELDS: dict[str, frozenset[str]] = {"timeBill": frozenset({"hours", "rate"})}

# Dialects that can receive deliveries, and the connector that writes to each.
TARGET_CONNECTORS: dict[str, Callable[..., Any]] = {
    "netsuite": NetSuiteConnector,
}


MAX_RETRY_WAIT_SECONDS = 2.0


@dataclass
class SendCounts:
    claimed: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def connector_for(connection: Connection, **options: Any) -> Any:
    factory = TARGET_CONNECTORS.get(connection.dialect)
    if factory is None:
        raise ValueError(f"{connection} cannot receive deliveries (dialect {connection.dialect}).")
    return factory(ConnectionConfig.from_connection(connection), **options)


def delivery_send_one(*, delivery: Delivery, connector: Any) -> Outcome:
    """Send one delivery; never raises for a target failure (it becomes the Outcome)."""
    record_type = delivery.payload["record_type"]
    numeric = NUMERIC_FIELDS.get(record_type, frozenset())
    body = {
        name: Decimal(value) if name in numeric and isinstance(value, str) else value
        for name, value in delivery.payload["body"].items()
        if value is not None
    }
    with correlation_scope(delivery.correlation_id):
        try:
            target_id = connector.upsert_by_external_id(
                record_type=record_type, external_id=delivery.external_id,
                body=body, idempotency_key=delivery.idempotency_key,
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
        ok=False, kind=kind or error.kind, status=error.status, message=error.message,
        vendor_code=error.vendor_code, retry_after=error.retry_after,
    )


def deliveries_send_due(
    *, limit: int = 200, connector_options: dict[str, Any] | None = None
) -> SendCounts:
    """Claim up to `limit` due deliveries and send them. Safe to run in many workers at once."""
    counts = SendCounts()
    claimed = deliveries_claim(limit=limit)
    counts.claimed = len(claimed)
    by_connection: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in claimed:
        by_connection[delivery.connection_id].append(delivery)
    connections = Connection.objects.in_bulk(list(by_connection))
    # A worker never sleeps out a target's long Retry-After: the outbox's next_attempt_at does.
    options = {
        "http_options": {"max_retry_wait": MAX_RETRY_WAIT_SECONDS}, **(connector_options or {})
    }
    for connection_id, batch in by_connection.items():
        connection = connections[connection_id]
        connector = connector_for(connection, **options)
        try:
            if connection.max_concurrency == 1:
                outcomes = [delivery_send_one(delivery=d, connector=connector) for d in batch]
            else:
                with ThreadPoolExecutor(max_workers=connection.max_concurrency) as pool:
                    outcomes = list(pool.map(
                        lambda d, c=connector: delivery_send_one(delivery=d, connector=c), batch
                    ))
        finally:
            close = getattr(connector, "close", None)
            if close:
                close()
        for delivery, outcome in zip(batch, outcomes, strict=True):
            state = delivery_outcome_record(delivery=delivery, outcome=outcome)
            if state == Delivery.State.DELIVERED:
                counts.delivered += 1
            elif state == Delivery.State.FAILED:
                counts.failed += 1
            else:
                counts.retrying += 1
    return counts
