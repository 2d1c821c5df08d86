"""Who changed a record: the `history_actor` on every history row, and bulk writers that keep it.

Every canonical model's history row carries `history_actor`, a short string such as
`user:alice`, `run:42` or `system:beat`. It is resolved when simple-history writes the row:

1. the user simple-history knows (the request user through HistoryRequestMiddleware, or an
   explicit `instance._history_user`, as the admin sets);
2. else the actor set with `acting_as(...)` in this thread or task (workers, commands);
3. else `system:unknown`, which an auditor should read as "a code path forgot to say".

Plain `bulk_create`, `bulk_update` and `QuerySet.update()` write NO history rows: use
`audited_bulk_create` / `audited_bulk_update` for canonical records.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone
from simple_history.signals import pre_create_historical_record
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from sync.errors import StaleRecord, UnknownStatus
from sync.models.base import CanonicalModel
from sync.models.history import ACTOR_MAX_LENGTH, UNKNOWN_ACTOR
from sync.pgcopy import CopyRows, copy_lines, ids_draw

_ACTOR = re.compile(r"^[a-z_]+:\S.*$")
DEFAULT_BATCH_SIZE = 1000

_current_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ledgerbridge_actor", default=None
)


def actor_validate(actor: str) -> str:
    """Return `actor` if it reads `<kind>:<who>` (e.g. `run:42`); raise ValueError otherwise."""
    if not isinstance(actor, str) or len(actor) > ACTOR_MAX_LENGTH or not _ACTOR.match(actor):
        raise ValueError(f"actor must look like 'user:alice' or 'run:42', got {actor!r}")
    return actor


def current_actor() -> str | None:
    """The actor set by the innermost `acting_as` in this context, if any."""
    return _current_actor.get()


@contextmanager
def acting_as(actor: str) -> Iterator[str]:
    """Attribute history rows written inside the block to `actor` (unless a request user is known).

    Context-local (contextvars): safe across threads and asyncio tasks; nests and restores.
    """
    token = _current_actor.set(actor_validate(actor))
    try:
        yield actor
    finally:
        _current_actor.reset(token)


def actor_for_user(user: Any) -> str:
    return f"user:{user.get_username()}"


@receiver(pre_create_historical_record, dispatch_uid="sync.audit.history_actor")
def _history_actor_fill(sender, history_instance, history_user=None, **kwargs) -> None:
    if not hasattr(history_instance, "history_actor"):
        return
    if history_user is not None:
        history_instance.history_actor = actor_for_user(history_user)
    else:
        history_instance.history_actor = current_actor() or UNKNOWN_ACTOR


def audited_bulk_create(
    *,
    model: type[CanonicalModel],
    objs: Sequence[CanonicalModel],
    actor: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[CanonicalModel]:
    """Insert `objs` and one "+" history row each, attributed to `actor`, in one transaction.

    Every record starts at version 1. Lifecycle: a new record may start in any valid status
    (a source system may hand over a record that is already approved); an unknown status
    raises UnknownStatus and a float in a decimal field TypeError, before anything is written.
    Not idempotent: a second call inserts again (or hits the model's unique constraints).
    Relies on the database returning primary keys from a bulk insert (PostgreSQL, SQLite >=
    3.35); simple-history's fallback re-reads rows by value, which cannot match ciphertext.
    Plain `bulk_create` writes no history.
    """
    actor_validate(actor)
    objs = list(objs)
    for obj in objs:
        obj.decimal_input_check()
        obj.lifecycle_check_known_status()
        obj.version = 1
    created = bulk_create_with_history(
        objs,
        model,
        batch_size=batch_size,
        custom_historical_attrs={"history_actor": actor},
    )
    for obj in created:
        obj.loaded_state_remember()
    return created


def audited_bulk_update(
    *,
    model: type[CanonicalModel],
    objs: Sequence[CanonicalModel],
    fields: Sequence[str],
    actor: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> int:
    """Update `fields` of `objs` and write one "~" history row each, attributed to `actor`.

    Inside one transaction the current rows are locked (select_for_update, in primary-key
    order so that overlapping batches cannot deadlock) and read once. Every object is checked
    against its stored row BEFORE any write, and one refusal writes nothing at all:
    `StaleRecord` if the stored version is not the one the object was loaded at (objects built
    by hand, never loaded, take the stored row as their base), `IllegalTransition` for a status
    move its model does not allow, `ImmutableRecord` for a content change of a record whose
    stored status is frozen. A row whose given content fields differ from the database gets
    `version` = stored version + 1 (`correlation_id` and other bookkeeping columns are not
    content), and `updated_at` is set for all. Raises `model.DoesNotExist` if a record is
    missing. Returns the number of rows updated.
    Plain `bulk_update` and `QuerySet.update()` write no history and bump no version.
    """
    actor_validate(actor)
    objs = list(objs)
    if not objs:
        return 0
    # version and updated_at are this function's to set.
    fields = [name for name in dict.fromkeys(fields) if name not in ("version", "updated_at")]
    status_field = model.STATUS_FIELD
    content = [model._meta.get_field(name) for name in fields if model.is_content_field(name)]
    read = list(dict.fromkeys([*fields, status_field, "version"]))
    for obj in objs:
        obj.decimal_input_check()
    with transaction.atomic():
        stored = {}
        # Sorted before chunking too: the locks of all chunks are taken in one global order.
        pks = sorted({obj.pk for obj in objs})
        for start in range(0, len(pks), batch_size):
            chunk = pks[start : start + batch_size]
            for row in (
                model._base_manager.select_for_update()
                .filter(pk__in=chunk)
                .order_by("pk")
                .values("pk", *read)
            ):
                stored[row["pk"]] = row
        missing = [obj.pk for obj in objs if obj.pk not in stored]
        if missing:
            raise model.DoesNotExist(f"{model.__name__} rows not found: {missing[:10]}")
        changes: dict[int, list[str]] = {}
        for obj in objs:
            row = stored[obj.pk]
            loaded_version = obj.loaded_version
            if loaded_version is not None and loaded_version != row["version"]:
                raise StaleRecord(
                    model=model.__name__,
                    pk=obj.pk,
                    loaded_version=loaded_version,
                    stored_version=row["version"],
                )
            if status_field in fields:
                obj.lifecycle_check(from_status=row[status_field])
            # Compare Python values (decrypted, coerced), not prepared ones: ciphertext differs
            # on every encryption even when the value does not.
            changes[id(obj)] = changed = [
                field.name
                for field in content
                if field.to_python(getattr(obj, field.attname)) != row[field.name]
            ]
            obj.frozen_check(from_status=row[status_field], changed=changed)
        now = timezone.now()
        for obj in objs:
            row = stored[obj.pk]
            obj.version = row["version"] + 1 if changes[id(obj)] else row["version"]
            obj.updated_at = now
        rows = bulk_update_with_history(
            objs,
            model,
            [*fields, "version", "updated_at"],
            batch_size=batch_size,
            custom_historical_attrs={"history_actor": actor},
        )
    for obj in objs:
        obj.loaded_state_remember(fields=[*fields, "version", "updated_at"])
    return rows


def audited_copy_create(
    *,
    model: type[CanonicalModel],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    constants: dict[str, Any] | None = None,
    actor: str,
) -> list[int]:
    """`audited_bulk_create` for PostgreSQL bulk paths: COPY instead of INSERT, no instances.

    Each row gives the values of `columns` (attnames) in order; `constants` are the same for
    every row; other columns take their defaults. Writes the rows at version 1 and one "+"
    history row each, attributed to `actor` and dated now, exactly as `audited_bulk_create`
    does; returns the new primary keys in row order. Call it inside the caller's transaction.
    A status outside the model's lifecycle raises UnknownStatus and a float TypeError, before
    anything is written. Not idempotent: the model's unique constraints refuse a second copy.
    """
    actor_validate(actor)
    constants = dict(constants or {})
    status_field = model.STATUS_FIELD
    statuses = [constants[status_field]] if status_field in constants else []
    if status_field in columns:
        at = list(columns).index(status_field)
        statuses = {row[at] for row in rows}
    known = {value for value, _ in model._meta.get_field(status_field).choices}
    for status in statuses:
        if status not in known:
            raise UnknownStatus(f"{model.__name__} has no status {status!r}")
    if not rows:
        return []
    clock = timezone.now()  # what auto_now / auto_now_add and the history date would take
    constants.update(version=1, created_at=clock, updated_at=clock)
    variables = ["id", *columns]
    table = CopyRows(model, variables=variables, constants=constants)
    history = CopyRows(
        model.history.model,
        variables=variables,
        omit=["history_id"],
        constants={
            **constants,
            "history_date": clock,
            "history_change_reason": None,
            "history_type": "+",
            "history_user_id": None,
            "history_actor": actor,
        },
    )
    ids = ids_draw(model, len(rows))
    # A history row repeats its record's values: each row is rendered once for both tables.
    rendered = [table.render((pk, *row)) for pk, row in zip(ids, rows, strict=True)]
    copy_lines(model, table, "".join([table.template.format(*r) for r in rendered]))
    copy_lines(model, history, "".join([history.template.format(*r) for r in rendered]))
    return ids
