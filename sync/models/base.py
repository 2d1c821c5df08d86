"""The abstract canonical record: timestamps, version, correlation id, lifecycle and history.

Lifecycle transitions are enforced in ONE place, `CanonicalModel.save()` (and the bulk writer
in sync/audit.py calls the same `lifecycle_check`): the status loaded from the database is
remembered in `from_db`, and a save that moves it along a pair absent from the model's
`TRANSITIONS` raises `IllegalTransition` before anything is written. A new record may start in
any of its statuses: a source system can hand over a record that is already approved.

The check compares with the status this instance loaded. Two processes that loaded the same
row can both pass it; writers that must serialise use `sync.lifecycle.record_transition`, which
re-reads the row under `select_for_update`.
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

from django.core import checks
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models, router
from simple_history.models import HistoricalRecords

from sync.audit import HistoryActorFields
from sync.encryption import EncryptedDecimalField
from sync.errors import IllegalTransition, UnknownStatus

# Bookkeeping columns: a save that changes only these does not change the record.
_NOT_CONTENT = frozenset({"created_at", "updated_at", "version"})


def lifecycle_status_field(choices: type[models.TextChoices], *, default: str, **kwargs) -> Any:
    """The CharField that holds a model's lifecycle status (indexed: queues filter on it)."""
    return models.CharField(
        max_length=32, choices=choices.choices, default=default, db_index=True, **kwargs
    )


class CanonicalModel(models.Model):
    """Base of every canonical record.

    `version` starts at 1 and grows by one on every save that changes the row's content; it
    feeds delivery idempotency keys, so an unchanged re-save must not bump it.
    Subclasses declare `STATUS_FIELD` (default "status") and `TRANSITIONS`
    {from: frozenset(to, ...)}; staying in the same status is always allowed.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1, editable=False)
    correlation_id = models.CharField(max_length=64, blank=True, db_index=True)

    history = HistoricalRecords(inherit=True, bases=[HistoryActorFields])

    STATUS_FIELD: ClassVar[str] = "status"
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {}

    class Meta:
        abstract = True

    # --- persistence --------------------------------------------------------------------

    def save(self, *, force_insert=False, force_update=False, using=None, update_fields=None):
        """Save, enforcing the lifecycle and bumping `version` when the content changed.

        Raises IllegalTransition (or UnknownStatus for a new record) before any write.
        """
        if update_fields is not None and not update_fields:
            return  # Django's contract: an empty update_fields saves nothing
        # Before any query: a TypeError raised inside Django's save would poison the caller's
        # transaction, so floats are refused here, up front.
        self.decimal_input_check()
        loaded = self._loaded_state(using=using, force_insert=bool(force_insert))
        if loaded is None:
            self.lifecycle_check_known_status()
            self.version = 1
        else:
            status_attname = self._meta.get_field(self.STATUS_FIELD).attname
            if update_fields is None or self.STATUS_FIELD in update_fields:
                self.lifecycle_check(from_status=loaded[status_attname])
            changed = self.changed_fields(loaded=loaded, only=update_fields)
            self.version = loaded["version"] + 1 if changed else loaded["version"]
            if update_fields is not None:
                update_fields = {*update_fields, "version", "updated_at"}
        super().save(
            force_insert=force_insert,
            force_update=force_update,
            using=using,
            update_fields=update_fields,
        )
        # Only what was written is now known to be in the database.
        self.loaded_state_remember(fields=update_fields)

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
