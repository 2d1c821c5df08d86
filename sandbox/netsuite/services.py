"""Writes of the NetSuite sandbox: create, patch, upsert by external id, delete, apply payments.

Each runs in one transaction on the sandbox alias and raises `SandboxError` (NetSuite's 400s,
404) for what a real account refuses. A create is not idempotent by itself (NetSuite's is not);
an upsert by external id is.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connections, transaction

from sandbox import storage
from sandbox.core.protocol import SandboxError
from sandbox.models import SandboxRecord
from sandbox.netsuite.records import (
    NONEXISTENT_ID,
    body_clean,
    record_find,
    records_memo,
    upsert_prefetch,
    user_error,
)
from sandbox.netsuite.rules import record_prepare
from sandbox.netsuite.schema import SYSTEM, RecordSpec, status_of
from sandbox.router import SANDBOX_DB

_TRAN_ID_PREFIX = {"invoice": "INV", "expenseReport": "EXP", "customerPayment": "PYMT"}


def not_found() -> SandboxError:
    return SandboxError(
        404,
        NONEXISTENT_ID,
        "The record instance does not exist. Provide a valid record instance ID.",
        fields=["id"],
    )


def _columns(spec: RecordSpec, data: dict[str, Any]) -> dict[str, Any]:
    parent = data.get(spec.parent_field) if spec.parent_field else None
    return {"parent_id": int(parent) if parent else None, "status": status_of(spec, data)}


def _duplicate(external_id: str) -> SandboxError:
    return user_error(f"A record with the external ID {external_id} already exists.", "externalId")


def _atomic(several_writes: bool) -> contextlib.AbstractContextManager:
    """A transaction for a write of several statements, or a savepoint inside a caller's
    transaction (which must survive this write failing: an upsert that loses the race to
    create goes round again as an update). A write of one statement needs neither."""
    if several_writes or connections[SANDBOX_DB].in_atomic_block:
        return transaction.atomic(using=SANDBOX_DB)
    return contextlib.nullcontext()


def record_get(*, spec: RecordSpec, record_id: str) -> SandboxRecord:
    record = (
        storage.record_get(system=SYSTEM, object_type=spec.name, record_id=int(record_id))
        if record_id.isdigit()
        else None
    )
    if record is None:
        raise not_found()
    return record


def record_create(*, spec: RecordSpec, body: Any, external_id: str | None = None) -> SandboxRecord:
    """Create a record from a REST body; `external_id` (from the URL) wins over the body's."""
    with records_memo():
        return _record_create(spec=spec, body=body, external_id=external_id)


def _record_create(*, spec: RecordSpec, body: Any, external_id: str | None) -> SandboxRecord:
    cleaned = body_clean(spec=spec, body=body)
    body_external = cleaned.pop("externalId", None)
    external_id = external_id or body_external
    more = spec.name in _TRAN_ID_PREFIX or spec.name == "customerPayment"
    with _atomic(more):
        data = record_prepare(spec=spec, data=cleaned)
        columns = _columns(spec, data)
        try:
            record = storage.record_create(
                system=SYSTEM,
                object_type=spec.name,
                data=data,
                external_id=external_id,
                parent_id=columns["parent_id"],
                status=columns["status"],
                savepoint=False,  # a duplicate abandons this whole transaction
            )
        except IntegrityError as exc:
            raise _duplicate(external_id or "") from exc
        prefix = _TRAN_ID_PREFIX.get(spec.name)
        if prefix:
            record.data["tranId"] = f"{prefix}{record.pk}"
            record.save(using=SANDBOX_DB, update_fields=["data"])
        if spec.name == "customerPayment":
            _payment_apply(record)
    return record


def record_patch(*, spec: RecordSpec, record: SandboxRecord, body: Any) -> SandboxRecord:
    """Merge a REST body into a record (null clears a field); re-checks the business rules."""
    with records_memo():
        return _record_patch(spec=spec, record=record, body=body)


def _record_patch(*, spec: RecordSpec, record: SandboxRecord, body: Any) -> SandboxRecord:
    cleaned = body_clean(spec=spec, body=body)
    if spec.name == "customerPayment" and "apply" in cleaned:
        raise user_error("The sandbox applies payments only when they are created.", "apply")
    external_id = cleaned.pop("externalId", None) if "externalId" in cleaned else record.external_id
    with _atomic(external_id != record.external_id):
        merged = {**record.data, **cleaned}
        data = record_prepare(spec=spec, data=merged, record_id=record.pk)
        removed = [key for key in record.data if key not in data]
        changes = {key: value for key, value in data.items() if record.data.get(key) != value}
        if external_id != record.external_id:
            record.external_id = external_id
            try:
                with transaction.atomic(using=SANDBOX_DB):
                    record.save(using=SANDBOX_DB, update_fields=["external_id"])
            except IntegrityError as exc:
                raise _duplicate(external_id or "") from exc
        record.data = {key: value for key, value in record.data.items() if key not in removed}
        columns = _columns(spec, data)
        storage.record_update(
            record=record,
            changes=changes,
            parent_id=columns["parent_id"],
            status=columns["status"],
        )
    return record


def record_upsert(*, spec: RecordSpec, external_id: str, body: Any) -> tuple[SandboxRecord, bool]:
    """PUT …/eid:{externalId}: update the record with this external id, or create it. Idempotent."""
    if isinstance(body, dict):
        body = {key: value for key, value in body.items() if key != "externalId"}
    for _attempt in range(2):
        with records_memo():  # afresh each time round: a lost race rolled back what it read
            record = upsert_prefetch(spec=spec, external_id=external_id, body=body)
            if record is not None:
                return record_patch(spec=spec, record=record, body=body), False
            try:
                return record_create(spec=spec, body=body, external_id=external_id), True
            except SandboxError as exc:
                # A concurrent upsert created it first: go round once more as an update.
                if exc.fields != ["externalId"]:
                    raise
    raise _duplicate(external_id)


def record_delete(*, spec: RecordSpec, record: SandboxRecord) -> None:
    """Delete a record. A customer payment's applications are undone first: NetSuite reopens
    the invoices it paid (amount remaining back, status Open)."""
    with transaction.atomic(using=SANDBOX_DB):
        if spec.name == "customerPayment" and not record.deleted:
            with records_memo():
                _payment_apply(record, sign=-1)
        record.deleted = True
        record.save(using=SANDBOX_DB, update_fields=["deleted"])
        storage.record_update(record=record, changes={}, action="deleted")


def _payment_apply(payment: SandboxRecord, *, sign: int = 1) -> None:
    """Reduce the amount remaining of each invoice the payment applies to (cash application);
    `sign=-1` undoes it (the payment is deleted: the amount comes back)."""
    for line in payment.data.get("apply") or []:
        if line.get("apply", True) is False:
            continue
        invoice = record_find(line["doc"], "invoice")
        if invoice is None:  # pragma: no cover - checked by the rules in the same transaction
            continue
        remaining = Decimal(str(invoice.data.get("amountRemaining") or 0)) - sign * Decimal(
            str(line["amount"])
        )
        status = "B" if remaining <= 0 else "A"
        amount = int(remaining) if remaining == remaining.to_integral_value() else float(remaining)
        storage.record_update(
            record=invoice, changes={"amountRemaining": amount, "status": status}, status=status
        )
