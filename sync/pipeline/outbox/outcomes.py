"""Recording what sending a delivery came to: delivered, retried, failed, the circuit.

The state machine (in_flight → delivered | pending again | failed) moves here; how a delivery
is sent is the caller's `send` function (sync/pipeline/delivery.py wires connectors). Failure
kinds are the connector boundary's classification: transient, permanent, indeterminate,
configuration.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from sync.audit import audited_bulk_create, audited_bulk_update
from sync.models import ExternalRef, TimeEntry
from sync.models.transactions import ApprovalStatus
from sync.money import to_decimal
from sync.pipeline.billing.issued import billing_deliveries_record
from sync.pipeline.exception_items import Failure, exception_items_raise
from sync.pipeline.expense_posting.posted import expenses_posted_record
from sync.pipeline.models import Connection, Delivery, TargetRecord
from sync.pipeline.models.exception_items import Queue, Stage
from sync.pipeline.payments.recorded import payment_deliveries_record
from sync.pipeline.retry import MAX_ATTEMPTS, next_attempt_at
from sync.pipeline.target_records import target_records_upsert

TRANSIENT = "transient"
PERMANENT = "permanent"
INDETERMINATE = "indeterminate"
CONFIGURATION = "configuration"

# Consecutive transient failures on one connection that open its circuit, and for how long.
CIRCUIT_THRESHOLD = 20
CIRCUIT_COOLDOWN = timedelta(seconds=30)
# A configuration failure (bad credentials, wrong base URL) stops the connection for longer:
# every delivery would fail the same way until a person fixes it.
CONFIGURATION_COOLDOWN = timedelta(minutes=5)


@dataclass(frozen=True)
class Outcome:
    """What sending one delivery came to."""

    ok: bool
    target_id: str = ""
    kind: str = ""  # when not ok: transient / permanent / indeterminate / configuration
    status: int | None = None
    message: str = ""
    vendor_code: str = ""
    retry_after: float | None = None


def _finish(delivery: Delivery, **values: Any) -> bool:
    """Conditional update: only the row still in flight under this claim's token changes, so
    a late outcome never overwrites a row that was reclaimed and sent again. Returns whether
    it changed."""
    changed = Delivery.objects.filter(
        id=delivery.id, state=Delivery.State.IN_FLIGHT, claim_token=delivery.claim_token
    ).update(in_flight_since=None, claim_token=None, **values)
    if changed:
        for name, value in values.items():
            setattr(delivery, name, value)
    return bool(changed)


def _current_state(delivery: Delivery) -> str:
    delivery.refresh_from_db(fields=["state", "attempts", "claim_token", "target_id"])
    return delivery.state


def delivery_outcome_record(
    *,
    delivery: Delivery,
    outcome: Outcome,
    now: datetime | None = None,
    rng: random.Random | None = None,
    circuit_reset: bool = True,
) -> str:
    """Apply one send's outcome; returns the delivery's new state.

    delivered: target id kept. transient: retried at a backoff (Retry-After honoured) until
    MAX_ATTEMPTS, then failed with an exception item. permanent / configuration: failed with an
    exception item at once. An indeterminate outcome must be resolved by the caller (look the
    record up in the target) before it gets here; if it still arrives, it is retried.
    A success resets the connection's consecutive-failure count unless `circuit_reset` is
    False (a sender that recorded a success on this connection a moment ago skips that write).
    """
    now = now or timezone.now()
    if outcome.ok:
        # A success is a fact whoever holds the row now: the target has the record. A late
        # success after a reclaim still marks it delivered, so it is not sent again.
        with transaction.atomic():
            changed = Delivery.objects.filter(
                id=delivery.id, state__in=[Delivery.State.IN_FLIGHT, Delivery.State.PENDING]
            ).update(
                state=Delivery.State.DELIVERED,
                target_id=outcome.target_id,
                delivered_at=now,
                last_status=outcome.status,
                last_error="",
                in_flight_since=None,
                claim_token=None,
            )
            if not changed:
                return _current_state(delivery)
            delivery.state = Delivery.State.DELIVERED
            delivery.target_id = outcome.target_id
            _targets_record([(delivery, outcome.target_id)], now=now)
        if circuit_reset:
            Connection.objects.filter(id=delivery.connection_id, consecutive_failures__gt=0).update(
                consecutive_failures=0, circuit_open_until=None
            )
        return Delivery.State.DELIVERED
    error = f"{outcome.kind}: {outcome.message}"[:2000]
    if outcome.kind == CONFIGURATION:
        return _configuration_failure(delivery=delivery, outcome=outcome, error=error, now=now)
    retryable = outcome.kind in (TRANSIENT, INDETERMINATE)
    if retryable and delivery.attempts < MAX_ATTEMPTS:
        wait_until = next_attempt_at(
            now=now, attempt=delivery.attempts, retry_after=outcome.retry_after, rng=rng
        )
        if not _finish(
            delivery,
            state=Delivery.State.PENDING,
            last_error=error,
            last_status=outcome.status,
            next_attempt_at=wait_until,
        ):
            return _current_state(delivery)
        _circuit_note_failure(connection_id=delivery.connection_id, now=now)
        return Delivery.State.PENDING
    # Failed for good: the state change and its exception item commit together or not at all.
    with transaction.atomic():
        if not _finish(
            delivery, state=Delivery.State.FAILED, last_error=error, last_status=outcome.status
        ):
            return _current_state(delivery)
        exception_items_raise(failures=[_delivery_failure(delivery, outcome)], now=now)
    if retryable:
        _circuit_note_failure(connection_id=delivery.connection_id, now=now)
    return Delivery.State.FAILED


def deliveries_delivered_record(
    *,
    results: Sequence[tuple[Delivery, Outcome]],
    now: datetime | None = None,
    circuit_reset: bool = True,
) -> list[str]:
    """Record successful sends together (one statement on PostgreSQL); returns each delivery's
    new state, in order. The same as `delivery_outcome_record` for each success: a success is a
    fact whoever holds the row now, so a row still in flight or pending becomes delivered; a
    row already delivered or failed keeps its state."""
    if not results:
        return []
    if any(not outcome.ok for _, outcome in results):
        raise ValueError("deliveries_delivered_record records successes only")
    if db_connection.vendor != "postgresql":
        return [
            delivery_outcome_record(delivery=d, outcome=o, now=now, circuit_reset=circuit_reset)
            for d, o in results
        ]
    now = now or timezone.now()
    with transaction.atomic(), db_connection.cursor() as cursor:
        cursor.execute(
            _DELIVERED_SQL,
            [
                now,
                [d.id for d, _ in results],
                [o.target_id for _, o in results],
                [o.status for _, o in results],
                [Delivery.State.IN_FLIGHT, Delivery.State.PENDING],
            ],
        )
        changed = {row[0] for row in cursor.fetchall()}
        _targets_record([(d, o.target_id) for d, o in results if d.id in changed], now=now)
    states = []
    for delivery, outcome in results:
        if delivery.id in changed:
            delivery.state = Delivery.State.DELIVERED
            delivery.target_id = outcome.target_id
            states.append(Delivery.State.DELIVERED)
        else:
            states.append(_current_state(delivery))
    if changed and circuit_reset:
        connection_ids = {d.connection_id for d, _ in results}
        Connection.objects.filter(id__in=connection_ids, consecutive_failures__gt=0).update(
            consecutive_failures=0, circuit_open_until=None
        )
    return states


def _targets_record(delivered: Sequence[tuple[Delivery, str]], *, now: datetime) -> None:
    """Remember what the targets now hold under our keys (TargetRecord, source "delivered"):
    one upsert per (connection, record type). `delivered`: (delivery, the target's id)."""
    known: dict[tuple[int, str], dict[str, str]] = defaultdict(dict)
    for delivery, target_id in delivered:
        record_type = delivery.payload.get("record_type") if delivery.payload else None
        if target_id and record_type:
            known[delivery.connection_id, record_type][delivery.external_id] = target_id
    for (connection_id, record_type), keys in known.items():
        target_records_upsert(
            connection=connection_id,
            record_type=record_type,
            known=keys,
            source=TargetRecord.Source.DELIVERED,
            now=now,
        )
    _time_entries_posted(delivered, now=now)
    expenses_posted_record(delivered=delivered, now=now)
    billing_deliveries_record(delivered=delivered, now=now)
    payment_deliveries_record(delivered=delivered, now=now)


POSTING_ACTOR = "system:outbox"


def _time_entries_posted(delivered: Sequence[tuple[Delivery, str]], *, now: datetime) -> None:
    """Time entries whose timeBill the ERP now holds are posted: status approved → posted (with
    history, actor `system:outbox`) and their ERP ref (the timeBill's id). Only when the
    delivered version is the entry's current one: a newer version is still on its way."""
    entry_type = ContentType.objects.get_for_model(TimeEntry).pk
    delivered_versions = {
        int(d.object_id): (d.record_version, target_id)
        for d, target_id in delivered
        if target_id
        and d.content_type_id == entry_type
        and (d.payload or {}).get("record_type") == "timeBill"
    }
    if not delivered_versions:
        return
    entries = [
        entry
        for entry in TimeEntry.objects.filter(
            pk__any=list(delivered_versions), status=ApprovalStatus.APPROVED
        )
        if entry.version == delivered_versions[entry.pk][0]
    ]
    if not entries:
        return
    for entry in entries:
        entry.status = ApprovalStatus.POSTED
    audited_bulk_update(model=TimeEntry, objs=entries, fields=["status"], actor=POSTING_ACTOR)
    linked = set(
        ExternalRef.objects.filter(
            system=ExternalRef.System.ERP,
            content_type_id=entry_type,
            object_id__any=[str(e.pk) for e in entries],
        ).values_list("object_id", flat=True)
    )
    audited_bulk_create(
        model=ExternalRef,
        actor=POSTING_ACTOR,
        objs=[
            ExternalRef(
                system=ExternalRef.System.ERP,
                content_type_id=entry_type,
                object_id=str(e.pk),
                external_id=delivered_versions[e.pk][1],
                last_synced_at=now,
            )
            for e in entries
            if str(e.pk) not in linked
        ],
    )


# What delivery_outcome_record writes for a success, for many rows at once: an array per column
# instead of a statement per row (the delivery loop records up to a connection's concurrency
# of successes per turn).
_DELIVERED_SQL = f"""
    UPDATE {Delivery._meta.db_table} AS d
       SET state = 'delivered', target_id = v.target_id, delivered_at = %s,
           last_status = v.status, last_error = '', in_flight_since = NULL, claim_token = NULL
      FROM unnest(%s::bigint[], %s::text[], %s::integer[]) AS v(id, target_id, status)
     WHERE d.id = v.id AND d.state = ANY(%s::text[])
 RETURNING d.id
"""  # noqa: S608 - the model's table name


def _configuration_failure(
    *, delivery: Delivery, outcome: Outcome, error: str, now: datetime
) -> str:
    """Bad credentials or a wrong address fail every delivery alike: pause the connection,
    put the delivery back (its attempt does not count) and open ONE item for integration ops.
    """
    with transaction.atomic():
        if not _finish(
            delivery,
            state=Delivery.State.PENDING,
            last_error=error,
            last_status=outcome.status,
            attempts=F("attempts") - 1,
            next_attempt_at=now + CONFIGURATION_COOLDOWN,
        ):
            return _current_state(delivery)
        connection = Connection.objects.select_for_update().get(id=delivery.connection_id)
        connection.circuit_open_until = now + CONFIGURATION_COOLDOWN
        connection.save(update_fields=["circuit_open_until"])
        exception_items_raise(
            failures=[
                Failure(
                    record_key=f"connection:{connection.name}",
                    stage=Stage.DELIVER,
                    queue=Queue.INTEGRATION_OPS,
                    code=outcome.vendor_code or "CONNECTION_CONFIGURATION",
                    category="configuration",
                    message=f"{connection} refuses Ledgerbridge: {outcome.message}"[:1000],
                    suggested_fix=(
                        "Check the connection's base URL and credentials. Deliveries wait "
                        "and resume by themselves once it answers again."
                    ),
                    cause=connection.name,
                    detail={"status": outcome.status},
                    correlation_id=delivery.correlation_id,
                )
            ],
            now=now,
        )
    return Delivery.State.PENDING


# A refusal is the business of whoever owns the record the delivery writes: the record is the
# middle part of the operation, "<system>.<record>.<verb>" (e.g. erp.customer.upsert).
BUSINESS_QUEUES = {
    "customer": Queue.CUSTOMER_MASTER,
    "account": Queue.CUSTOMER_MASTER,
    "job": Queue.PROJECT_SETUP,
    "project_task": Queue.PROJECT_SETUP,
    "workspace": Queue.PROJECT_SETUP,
    "story": Queue.PROJECT_SETUP,
    "invoice": Queue.BILLING,
    "invoice_item": Queue.BILLING,
    "payment": Queue.BILLING,
}


def business_queue(operation: str) -> str:
    """The queue a target's refusal of `operation` goes to (time and expense by default)."""
    parts = operation.split(".")
    record = parts[1] if len(parts) >= 3 else ""
    return BUSINESS_QUEUES.get(record, Queue.TIME_AND_EXPENSE)


def _delivery_failure(delivery: Delivery, outcome: Outcome) -> Failure:
    if outcome.kind in (TRANSIENT, INDETERMINATE):
        queue, category = Queue.INTEGRATION_OPS, "technical"
        fix = f"The target kept failing for {delivery.attempts} attempts; retry once it is healthy."
    else:
        queue, category = business_queue(delivery.operation), "business"
        fix = "Correct the record or the reference data the target rejected, then retry."
    amount = delivery.payload.get("amount")
    return Failure(
        record_key=f"delivery:{delivery.operation}:{delivery.external_id}",
        stage=Stage.DELIVER,
        queue=queue,
        code=outcome.vendor_code or f"{outcome.kind.upper()}_{outcome.status or 'ERROR'}",
        category=category,
        message=f"The target refused the {delivery.operation}: {outcome.message}"[:1000],
        suggested_fix=fix,
        cause=outcome.vendor_code or outcome.kind,
        detail={
            "status": outcome.status,
            "vendor_code": outcome.vendor_code,
            "attempts": delivery.attempts,
        },
        payload=delivery.payload,
        money_at_risk=_amount(amount),
        currency=str(delivery.payload.get("currency", "")),
        correlation_id=delivery.correlation_id,
        delivery_id=delivery.id,
    )


def _amount(value: Any) -> Decimal | None:
    """Money at risk from a payload amount; a float or garbage is not guessed at (None)."""
    try:
        return None if value is None else to_decimal(value)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _circuit_note_failure(*, connection_id: int, now: datetime) -> None:
    Connection.objects.filter(id=connection_id).update(
        consecutive_failures=F("consecutive_failures") + 1
    )
    Connection.objects.filter(id=connection_id, consecutive_failures__gte=CIRCUIT_THRESHOLD).filter(
        Q(circuit_open_until__isnull=True) | Q(circuit_open_until__lte=now)
    ).update(circuit_open_until=now + CIRCUIT_COOLDOWN, consecutive_failures=0)
