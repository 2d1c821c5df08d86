"""What every master-data flow shares: strict reading, plans, and writing them in bulk.

A processor module (erp_*.py, hr.py, psa.py) supplies two things per (system, entity) to the
processing protocol (sync.pipeline.processing): a strict `parse(payload)` that raises
PayloadError, with `Reader`, and a `plan(records, batch)` that resolves the references of the
whole batch with a fixed number of queries and turns each record into a `Plan` (create or
update a canonical record, link it with an ExternalRef) or an exception (`batch.fail`).
`plans_apply` then writes the plans in bulk:

- a new record: `audited_bulk_create` (history, actor = the run) and its ExternalRef;
- a matched record: `ownership_merge` on the processing day; refused fields become
  FIELD_OWNED_ELSEWHERE items (the rest applies), a status move the model's lifecycle forbids
  becomes STATUS_CHANGE_REFUSED, and the changed records are written with one
  `audited_bulk_update` (version bump only when content changed);
- a matched record without a ref in this system gets one; a ref pointing elsewhere is a
  REFERENCE_CONFLICT for integration ops (never overwritten silently).

Idempotent: the same payload again matches the same record, changes nothing and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from sync.audit import audited_bulk_create, audited_bulk_update
from sync.connectors.base import iso_date
from sync.errors import PayloadError
from sync.mappings.ownership import ownership_merge
from sync.models import ExternalRef
from sync.pipeline.models.exception_items import Queue
from sync.pipeline.processing import SYSTEM_LABELS, Batch, Item

MAX_TEXT = 255


# --- strict payload reading ----------------------------------------------------------------


class Reader:
    """Reads fields of one payload, collecting every problem; `done()` raises them together."""

    def __init__(self, payload: Any, *, what: str) -> None:
        if not isinstance(payload, dict):
            raise PayloadError(f"The {what} payload is not a JSON object.")
        self.payload = payload
        self.errors: list[str] = []

    def _missing(self, name: str, required: bool) -> None:
        if required:
            self.errors.append(f"`{name}` is missing.")

    def text(
        self,
        name: str,
        *,
        required: bool = True,
        max_length: int = MAX_TEXT,
        source: dict[str, Any] | None = None,
    ) -> str | None:
        value = (self.payload if source is None else source).get(name)
        if value is None or value == "":
            self._missing(name, required)
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.errors.append(f"`{name}` must be text, got {type(value).__name__}.")
            return None
        text = str(value).strip()
        if len(text) > max_length:
            self.errors.append(f"`{name}` is {len(text)} characters long; at most {max_length}.")
            return None
        return text

    def flag(
        self,
        name: str,
        *,
        required: bool = False,
        default: bool = False,
        source: dict[str, Any] | None = None,
    ) -> bool:
        """A boolean: JSON true/false, or SuiteQL's "T"/"F"."""
        value = (self.payload if source is None else source).get(name)
        if value is None or value == "":
            self._missing(name, required)
            return default
        if isinstance(value, bool):
            return value
        if value in ("T", "F"):
            return value == "T"
        self.errors.append(f"`{name}` must be true or false, got {str(value)[:40]!r}.")
        return default

    def day(self, name: str, *, required: bool = True) -> dt.date | None:
        """A date: ISO "YYYY-MM-DD" or SuiteQL's default "M/D/YYYY"."""
        value = self.payload.get(name)
        if value is None or value == "":
            self._missing(name, required)
            return None
        if isinstance(value, str):
            try:
                if re.fullmatch(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}", value):
                    month, day, year = (int(p) for p in value.split("/"))
                    return dt.date(year, month, day)
                return iso_date(value)
            except ValueError:
                pass
        self.errors.append(f"`{name}` {str(value)[:40]!r} is not a date.")
        return None

    def amount(self, name: str, value: Any) -> Decimal | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self.errors.append(f"`{name}` must be a decimal string.")
            return None
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0 or amount >= 10**14:
            self.errors.append(f"`{name}` {str(value)[:40]!r} is not a non-negative amount.")
            return None
        return amount

    def choice(self, name: str, allowed: Iterable[str], *, required: bool = False) -> str | None:
        value = self.text(name, required=required)
        if value is not None and value not in allowed:
            self.errors.append(f"`{name}` {value[:40]!r} is not one of {sorted(allowed)}.")
            return None
        return value

    def done(self) -> None:
        if self.errors:
            raise PayloadError(" ".join(self.errors))


# --- plans -----------------------------------------------------------------------------------


@dataclass
class Plan:
    """What one source record does to the canonical model.

    `values`: canonical field name → value (foreign keys as primary keys), merged under
    ownership on an update; `fixed`: fields set only when the record is created (natural
    keys); `existing`: the matched record, or None to create one. `natural_key` detects two
    creates of one record within a batch.
    """

    item: Item
    external_id: str
    values: dict[str, Any]
    existing: models.Model | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    natural_key: Any = None


# --- reads shared by processors ----------------------------------------------------------------


def content_type(model: type[models.Model]) -> ContentType:
    return ContentType.objects.get_for_model(model)


def refs_load(system: str, model: type[models.Model], external_ids: Iterable[str]) -> dict:
    """{external id: primary key} of `model` records linked in `system` (one query)."""
    to_pk = model._meta.pk.to_python
    return {
        ext: to_pk(object_id)
        for ext, object_id in ExternalRef.objects.filter(
            system=system,
            content_type=content_type(model),
            external_id__any={e for e in external_ids if e},
        ).values_list("external_id", "object_id")
    }


def records_by_ref(
    system: str,
    model: type[models.Model],
    external_ids: Iterable[str],
    queryset: models.QuerySet | None = None,
) -> dict[str, Any]:
    """{external id: record} of `model` records linked in `system` (two queries)."""
    refs = refs_load(system, model, external_ids)
    records = (queryset if queryset is not None else model.objects).in_bulk(set(refs.values()))
    return {ext: records[pk] for ext, pk in refs.items() if pk in records}


# --- writing plans ----------------------------------------------------------------------


def _attname(model: type[models.Model], name: str) -> str:
    return model._meta.get_field(name).attname


def plans_apply(
    batch: Batch,
    *,
    model: type[models.Model],
    owner_entity: str,
    plans: list[Plan],
    queue: str,
) -> dict[str, Any]:
    """Write `plans` in bulk (see the module docstring); return {external id: primary key} of
    every record created, updated, linked or found unchanged. A fixed number of queries."""
    if not plans:
        return {}
    ct = content_type(model)
    status_field = model.STATUS_FIELD
    linked_ids = [str(p.existing.pk) for p in plans if p.existing is not None]
    linked = dict(
        ExternalRef.objects.filter(
            system=batch.system, content_type=ct, object_id__any=linked_ids
        ).values_list("object_id", "external_id")
    )
    taken = dict(
        ExternalRef.objects.filter(
            system=batch.system,
            content_type=ct,
            external_id__any=[p.external_id for p in plans],
        ).values_list("external_id", "object_id")
    )
    creates: list[Plan] = []
    updates: list[models.Model] = []
    fields: set[str] = set()
    new_refs: list[tuple[str, Any]] = []
    done: dict[str, Any] = {}
    seen_keys: set[Any] = set()
    seen_records: set[Any] = set()
    for plan in plans:
        key = batch.record_key(plan.external_id)
        record = plan.existing
        if record is None:
            if plan.external_id in taken or (
                plan.natural_key is not None and plan.natural_key in seen_keys
            ):
                _conflict(batch, plan, model, "another record already carries this id or key")
                continue
            seen_keys.add(plan.natural_key)
            creates.append(plan)
            continue
        if record.pk in seen_records:
            _conflict(
                batch,
                plan,
                model,
                f"{model.__name__} {record.pk} is matched by two records of this batch",
            )
            continue
        seen_records.add(record.pk)
        ref_now = linked.get(str(record.pk))
        owner_now = taken.get(plan.external_id)
        if (ref_now is not None and ref_now != plan.external_id) or (
            owner_now is not None and owner_now != str(record.pk)
        ):
            _conflict(
                batch,
                plan,
                model,
                f"{model.__name__} {record.pk} is linked to "
                f"{ref_now or '-'}, and {plan.external_id} to {owner_now or '-'}",
            )
            continue
        if ref_now is None:
            new_refs.append((plan.external_id, record.pk))
        current = {name: getattr(record, _attname(model, name)) for name in plan.values}
        merge = ownership_merge(
            entity=owner_entity,
            current=current,
            incoming=plan.values,
            source_system=batch.system,
            book=batch.ownership,
            on=batch.today,
        )
        for refused in merge.refused:
            batch.refuse_field(
                plan.item, plan.external_id, refused=refused, entity=owner_entity, queue=queue
            )
        applied = dict(merge.applied)
        moving_to = applied.get(status_field)
        from_status = getattr(record, status_field)
        if moving_to is not None and not model.transition_allowed(
            from_status=from_status, to_status=moving_to
        ):
            applied.pop(status_field)
            batch.fail(
                plan.item,
                plan.external_id,
                code="STATUS_CHANGE_REFUSED",
                queue=queue,
                park=False,
                cause=f"{owner_entity}:{from_status}->{moving_to}",
                message=f"The {SYSTEM_LABELS.get(batch.system, batch.system)} moved "
                f"{owner_entity} {plan.external_id} from {from_status} to {moving_to}, which "
                "its lifecycle does not allow; the rest of the change was applied.",
                suggested_fix="Check the record's status in both systems and correct it "
                "where it is wrong.",
                detail={"from": from_status, "to": moving_to},
            )
        for name, value in applied.items():
            setattr(record, _attname(model, name), value)
        if applied:
            updates.append(record)
            fields.update(applied)
            batch.counts.updated += 1
        elif ref_now is None:
            batch.counts.updated += 1  # newly linked
        else:
            batch.counts.unchanged += 1
        batch.passed.append(key)
        done[plan.external_id] = record.pk
    if creates:
        objs = [
            model(**{_attname(model, n): v for n, v in {**p.fixed, **p.values}.items()})
            for p in creates
        ]
        created = audited_bulk_create(model=model, objs=objs, actor=batch.run.actor)
        for plan, record in zip(creates, created, strict=True):
            new_refs.append((plan.external_id, record.pk))
            done[plan.external_id] = record.pk
            batch.passed.append(batch.record_key(plan.external_id))
        batch.counts.created += len(created)
    if updates:
        audited_bulk_update(model=model, objs=updates, fields=sorted(fields), actor=batch.run.actor)
    if new_refs:
        audited_bulk_create(
            model=ExternalRef,
            objs=[
                ExternalRef(
                    system=batch.system,
                    content_type=ct,
                    object_id=str(pk),
                    external_id=ext,
                    last_synced_at=batch.now,
                )
                for ext, pk in new_refs
            ],
            actor=batch.run.actor,
        )
    return done


def _conflict(batch: Batch, plan: Plan, model: type[models.Model], why: str) -> None:
    label = SYSTEM_LABELS.get(batch.system, batch.system)
    batch.fail(
        plan.item,
        plan.external_id,
        code="REFERENCE_CONFLICT",
        queue=Queue.INTEGRATION_OPS,
        category="technical",
        cause=f"{batch.system}:{model.__name__}:{plan.external_id}",
        message=f"{label} record {plan.external_id} cannot be linked to a {model.__name__}: {why}.",
        suggested_fix="Find which link is right, correct the cross-reference, then replay.",
    )


def missing_reference(
    batch: Batch,
    item: Item,
    external_id: str,
    *,
    what: str,
    ref: str | None,
    queue: str = Queue.INTEGRATION_OPS,
    code: str = "REFERENCE_MISSING",
    fix: str = "",
    legal_entity: str = "",
) -> None:
    """Park a record whose reference (`what` `ref`) is not in Ledgerbridge yet; `legal_entity`:
    the code of the record's entity when the processor has it in hand."""
    label = SYSTEM_LABELS.get(batch.system, batch.system)
    batch.fail(
        item,
        external_id,
        code=code,
        queue=queue,
        cause=f"{what}:{ref}",
        message=f"{label} {batch.entity} {external_id} refers to {what} {ref}, which "
        "Ledgerbridge does not know yet.",
        suggested_fix=fix
        or f"Sync the {what} first (or fix the reference in the {label}), then replay.",
        detail={"missing": what, "reference": ref},
        legal_entity=legal_entity,
    )


def levels_apply(
    batch: Batch,
    *,
    plans: list[tuple[Plan, str | None]],
    parent_field: str,
    known: dict[str, Any],
    apply: Callable[[list[Plan]], dict[str, Any]],
) -> None:
    """Apply plans whose `parent_field` names another record of the batch, parents first.

    `plans` pairs each plan with its parent's external id; `known` maps external ids of
    parents already in Ledgerbridge to their primary keys. A parent found nowhere is left
    empty. The number of rounds is the depth of the hierarchy (a WBS, an org chart), not the
    batch size.
    """
    in_batch = {p.external_id for p, _ in plans}
    pending = list(plans)
    resolved = dict(known)
    while pending:
        ready, waiting = [], []
        for plan, parent in pending:
            if parent is not None and parent in in_batch and parent not in resolved:
                waiting.append((plan, parent))
                continue
            plan.values[parent_field] = resolved.get(parent) if parent else None
            ready.append(plan)
        if not ready:  # a cycle: break it by leaving the parents empty
            for plan, _ in waiting:
                plan.values[parent_field] = None
            ready, waiting = [p for p, _ in waiting], []
        resolved.update(apply(ready))
        in_batch -= {p.external_id for p in ready}
        pending = waiting
