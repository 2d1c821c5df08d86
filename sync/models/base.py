"""The abstract canonical record: timestamps, version, correlation id, lifecycle and history.

Every write rule is enforced in ONE place, `CanonicalModel.save()` (the bulk writer in
sync/audit.py applies the same rules to the rows it locks), before anything is written:

- lifecycle: the status loaded from the database is remembered in `from_db`, and a save that
  moves it along a pair absent from the model's `TRANSITIONS` raises `IllegalTransition`. A new
  record may start in any of its statuses: a source system can hand over an approved record.
- frozen records: a record whose stored status is in `FROZEN_STATUSES` keeps its content; only
  its status (along TRANSITIONS) and bookkeeping columns may change, else `ImmutableRecord`.
- optimistic locking: the UPDATE only matches the row if its `version` is still the one this
  instance loaded; otherwise `StaleRecord` and nothing is written. So a stale copy can neither
  move a status backwards nor write a second, different "version 3" (which would share the
  outbox idempotency key of the first and never be delivered).

Writers that must serialise rather than fail use `sync.lifecycle.record_transition`, which
re-reads the row under `select_for_update`.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models, router, transaction

from sync.encryption import EncryptedDecimalField
from sync.errors import IllegalTransition, ImmutableRecord, StaleRecord, UnknownStatus
from sync.models.history import HistoryActorFields, LeanHistoricalRecords

# Bookkeeping columns: a save that changes only these does not change the record, so it keeps
# the version (and with it the delivery idempotency key). `correlation_id` is a tracing label
# that no target system receives as content: re-tagging a record must not post it again.
# `mapping_versions` is deliberately NOT here: a different mapping version can change where
# and how the record is posted (account, subsidiary, tax code), so it is content.
_NOT_CONTENT = frozenset({"created_at", "updated_at", "version", "correlation_id"})


def lifecycle_status_field(choices: type[models.TextChoices], *, default: str, **kwargs) -> Any:
    """The CharField that holds a model's lifecycle status (indexed: queues filter on it; a
    high-volume model passes db_index=False and declares a plain index of its own, without the
    `varchar_pattern_ops` twin PostgreSQL gets for an indexed CharField)."""
    kwargs.setdefault("db_index", True)
    return models.CharField(max_length=32, choices=choices.choices, default=default, **kwargs)


class CanonicalModel(models.Model):
    """Base of every canonical record.

    `version` starts at 1 and grows by one on every save that changes the row's content; it
    feeds delivery idempotency keys, so an unchanged re-save must not bump it.
    Subclasses declare `STATUS_FIELD` (default "status"), `TRANSITIONS`
    {from: frozenset(to, ...)} (staying in the same status is always allowed) and, where some
    statuses are final for the content, `FROZEN_STATUSES`.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    # A tracing label, never filtered on here: traces are followed through the inbox, the outbox
    # and the exception items, which index it. Not indexed on the canonical tables (2 index
    # entries a row, with PostgreSQL's pattern-ops twin, on every posting).
    correlation_id = models.CharField(max_length=64, blank=True)
    # The mapping versions this record was last processed with, {mapping set slug: number}:
    # a replay is reproducible and an auditor can see why it posted where it did.
    mapping_versions = models.JSONField(default=dict, blank=True)

    history = LeanHistoricalRecords(inherit=True, bases=[HistoryActorFields])

    STATUS_FIELD: ClassVar[str] = "status"
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {}
    # Statuses in which the record's content is final (posted, invoiced, ...): only the status
    # and bookkeeping columns may still change. Empty: the record stays editable.
    FROZEN_STATUSES: ClassVar[frozenset[str]] = frozenset()

    class Meta:
        abstract = True

    # --- persistence --------------------------------------------------------------------

    def save(self, *, force_insert=False, force_update=False, using=None, update_fields=None):
        """Save, enforcing the write rules and bumping `version` when the content changed.

        Raises IllegalTransition, ImmutableRecord (or UnknownStatus for a new record) before any
        write, and StaleRecord, with nothing written, when the stored row is no longer at the
        version this instance loaded. After StaleRecord, `refresh_from_db()` and redo the change.
        """
        if update_fields is not None and not update_fields:
            return  # Django's contract: an empty update_fields saves nothing
        db = using or router.db_for_write(type(self), instance=self)
        loaded = self.write_check(
            using=db, force_insert=bool(force_insert), update_fields=update_fields
        )
        if loaded is None:
            self.version = 1
        else:
            changed = self.changed_fields(loaded=loaded, only=update_fields)
            self.version = loaded["version"] + 1 if changed else loaded["version"]
            if update_fields is not None:
                update_fields = {*update_fields, "version", "updated_at"}
        self._version_expected = None if loaded is None else loaded["version"]
        try:
            # A savepoint: StaleRecord is raised inside Django's save, which would otherwise
            # mark the caller's whole transaction for rollback. It also makes the row and its
            # history row one unit outside any transaction.
            with transaction.atomic(using=db):
                super().save(
                    force_insert=force_insert,
                    force_update=force_update,
                    using=db,
                    update_fields=update_fields,
                )
        finally:
            self._version_expected = None
        # Only what was written is now known to be in the database.
        self.loaded_state_remember(fields=update_fields)

    def write_check(
        self, *, using: str | None = None, force_insert: bool = False, update_fields: Any = None
    ) -> dict[str, Any] | None:
        """Raise what `save()` would raise before writing; return the stored state it builds on.

        Writes nothing (it may read the stored row once, for a record built by hand). Raises
        TypeError (a float in a decimal field), UnknownStatus (new record), IllegalTransition,
        ImmutableRecord. Returns None when the save would insert. The admin forms call it to
        show these refusals as form errors. Staleness is only known at the UPDATE itself.
        """
        # Before any query: a TypeError raised inside Django's save would poison the caller's
        # transaction, so floats are refused here, up front.
        self.decimal_input_check()
        loaded = self._loaded_state(using=using, force_insert=force_insert)
        if loaded is None:
            self.lifecycle_check_known_status()
            return None
        from_status = loaded[self._meta.get_field(self.STATUS_FIELD).attname]
        if update_fields is None or self.STATUS_FIELD in update_fields:
            self.lifecycle_check(from_status=from_status)
        self.frozen_check(
            from_status=from_status, changed=self.changed_fields(loaded=loaded, only=update_fields)
        )
        return loaded

    def _do_update(self, base_qs, using, pk_val, *args, **kwargs):
        # Django 5.2 private API (django/db/models/base.py, Model._do_update(base_qs, using,
        # pk_val, values, update_fields, forced_update)): the one place every UPDATE of save()
        # passes through, so the version condition cannot be bypassed by a save path.
        expected = getattr(self, "_version_expected", None)
        if expected is None:
            return super()._do_update(base_qs, using, pk_val, *args, **kwargs)
        updated = super()._do_update(
            base_qs.filter(version=expected), using, pk_val, *args, **kwargs
        )
        if not updated:
            stored = base_qs.filter(pk=pk_val).values_list("version", flat=True).first()
            if stored is not None:
                raise StaleRecord(
                    model=type(self).__name__,
                    pk=pk_val,
                    loaded_version=expected,
                    stored_version=stored,
                )
        # A row deleted meanwhile: Django's own handling (insert, or DatabaseError).
        return updated

    # --- loaded state -------------------------------------------------------------------

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance.loaded_state_remember()
        return instance

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        super().refresh_from_db(using=using, fields=fields, from_queryset=from_queryset)
        self.loaded_state_remember(fields=fields)

    def loaded_state_remember(self, *, fields: Any = None) -> None:
        """Remember the current field values as what the database holds (after load or write)."""
        deferred = self.get_deferred_fields()
        concrete = [f for f in self._meta.concrete_fields if f.attname not in deferred]
        if fields is None:
            self._lifecycle_loaded = {f.attname: getattr(self, f.attname) for f in concrete}
            return
        wanted = {self._meta.get_field(name).attname for name in fields}
        loaded = dict(getattr(self, "_lifecycle_loaded", None) or {})
        for f in concrete:
            if f.attname in wanted:
                loaded[f.attname] = getattr(self, f.attname)
        self._lifecycle_loaded = loaded

    def _loaded_state(self, *, using: str | None, force_insert: bool) -> dict[str, Any] | None:
        """What the database holds for this row, or None when the save will insert."""
        loaded = getattr(self, "_lifecycle_loaded", None)
        status_attname = self._meta.get_field(self.STATUS_FIELD).attname
        if (
            loaded is not None
            and not self._state.adding
            and status_attname in loaded
            and "version" in loaded
        ):
            return loaded
        if self.pk is None or force_insert:
            return None
        # Built by hand with a primary key (or from a history row): read the stored row once so
        # that the lifecycle and version rules still hold.
        db = using or router.db_for_write(type(self), instance=self)
        stored = type(self)._base_manager.using(db).filter(pk=self.pk).first()
        return None if stored is None else stored._lifecycle_loaded

    def changed_fields(self, *, loaded: dict[str, Any], only: Any = None) -> list[str]:
        """Attnames whose current value differs from `loaded` (bookkeeping columns excluded)."""
        names = None if only is None else {self._meta.get_field(n).attname for n in only}
        changed = []
        for field in self._meta.concrete_fields:
            attname = field.attname
            if field.name in _NOT_CONTENT or attname not in loaded:
                continue
            if names is not None and attname not in names:
                continue
            current = getattr(self, attname)
            # A value to_python refuses (a float) counts as a change; the save will refuse it.
            with contextlib.suppress(ValidationError):
                current = field.to_python(current)
            if current != loaded[attname]:
                changed.append(attname)
        return changed

    @property
    def loaded_version(self) -> int | None:
        """The `version` this instance was loaded at (or last wrote); None if never loaded."""
        return (getattr(self, "_lifecycle_loaded", None) or {}).get("version")

    @classmethod
    def is_content_field(cls, name: str) -> bool:
        """Whether a change of field `name` changes the record (and so bumps `version`)."""
        return name not in _NOT_CONTENT

    def decimal_input_check(self) -> None:
        """Raise TypeError, naming the field, if any decimal field holds a float."""
        for field in self._meta.concrete_fields:
            if isinstance(field, models.DecimalField | EncryptedDecimalField):
                value = getattr(self, field.attname)
                if isinstance(value, float):
                    raise TypeError(
                        f"{field.name}: float {value!r} refused; pass a Decimal or a string"
                    )

    # --- lifecycle ----------------------------------------------------------------------

    @classmethod
    def transition_allowed(cls, *, from_status: str, to_status: str) -> bool:
        return from_status == to_status or to_status in cls.TRANSITIONS.get(
            from_status, frozenset()
        )

    def lifecycle_check(self, *, from_status: str) -> None:
        """Raise IllegalTransition unless `from_status` -> the current status is allowed."""
        to_status = getattr(self, self.STATUS_FIELD)
        if not self.transition_allowed(from_status=from_status, to_status=to_status):
            raise IllegalTransition(
                model=type(self).__name__,
                pk=self.pk,
                field=self.STATUS_FIELD,
                from_status=from_status,
                to_status=to_status,
            )

    def frozen_check(self, *, from_status: str, changed: Any) -> None:
        """Raise ImmutableRecord if `changed` content fields touch a record frozen in `from_status`.

        `changed` names fields (names or attnames) whose values differ from the stored ones; the
        status field itself may move (along TRANSITIONS) and bookkeeping columns are not content.
        """
        if from_status not in self.FROZEN_STATUSES:
            return
        names = {f.attname: f.name for f in self._meta.concrete_fields}
        content = sorted(
            {names.get(c, c) for c in changed}
            - {self.STATUS_FIELD}
            - {n for n in names.values() if not self.is_content_field(n)}
        )
        if content:
            raise ImmutableRecord(
                model=type(self).__name__, pk=self.pk, status=from_status, fields=content
            )

    def lifecycle_check_known_status(self) -> None:
        """Raise UnknownStatus unless the current status is one of the model's choices."""
        field = self._meta.get_field(self.STATUS_FIELD)
        status = getattr(self, self.STATUS_FIELD)
        if status not in {value for value, _ in field.choices}:
            raise UnknownStatus(
                f"{type(self).__name__} {self.pk}: {self.STATUS_FIELD} {status!r} is not one of "
                f"{[value for value, _ in field.choices]}"
            )

    # --- checks -------------------------------------------------------------------------

    @classmethod
    def check(cls, **kwargs):
        errors = super().check(**kwargs)
        if cls._meta.abstract:
            return errors
        try:
            field = cls._meta.get_field(cls.STATUS_FIELD)
        except FieldDoesNotExist:
            return [
                *errors,
                checks.Error(
                    f"STATUS_FIELD {cls.STATUS_FIELD!r} is not a field", obj=cls, id="sync.E001"
                ),
            ]
        statuses = {value for value, _ in field.choices or ()}
        unlisted = statuses - set(cls.TRANSITIONS)
        if unlisted:
            # Listing terminal statuses with an empty set makes "final" a visible decision.
            errors.append(
                checks.Error(
                    f"TRANSITIONS has no entry for statuses {sorted(unlisted)}",
                    obj=cls,
                    id="sync.E004",
                )
            )
        if not set(cls.FROZEN_STATUSES) <= statuses:
            errors.append(
                checks.Error(
                    f"FROZEN_STATUSES names unknown statuses "
                    f"{sorted(set(cls.FROZEN_STATUSES) - statuses)}",
                    obj=cls,
                    id="sync.E005",
                )
            )
        for from_status, targets in cls.TRANSITIONS.items():
            if not isinstance(targets, frozenset):
                errors.append(
                    checks.Error(
                        f"TRANSITIONS[{from_status!r}] must be a frozenset", obj=cls, id="sync.E002"
                    )
                )
            unknown = ({from_status} | set(targets)) - statuses
            if unknown:
                errors.append(
                    checks.Error(
                        f"TRANSITIONS names unknown statuses {sorted(unknown)}",
                        obj=cls,
                        id="sync.E003",
                    )
                )
        return errors
