"""Writes to versioned mappings: the only way they change (ownership: `ownership_services`).

Every service is keyword-only, runs in one transaction, validates with `full_clean()` before
saving, records the acting `user` on the history rows (None means the system: the actor set
with `sync.audit.acting_as`, else `system:unknown`), and raises a `MappingError` (a
`sync.errors.DomainError`) with nothing written when it refuses.
Status moves are not idempotent: repeating one raises MappingTransitionRefused.

Four eyes: a person never publishes a mapping version they authored (created, submitted or
wrote an entry of); `mapping_version_publish` refuses with MappingFourEyesRefused, so every
change a person makes, a rollback included, is published by a second mapping admin. The system
(`user=None`: demo set-up, data migrations) is not a person and publishes alone. The rule is
here, not in the admin, so that every way in (admin, shell, commands) meets it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Max, Q
from django.utils import timezone
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from sync.audit import UNKNOWN_ACTOR, actor_for_user, current_actor
from sync.mappings.csv_io import csv_errors_describe, entries_csv_parse
from sync.mappings.errors import (
    MappingEffectiveDateTaken,
    MappingError,
    MappingFourEyesRefused,
    MappingInvalid,
    MappingTransitionRefused,
    MappingVersionEmpty,
    MappingVersionFrozen,
)
from sync.mappings.models import MappingEntry, MappingSet, MappingVersion
from sync.mappings.selectors import mapping_reference_list

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    # The acting person; None when the system acts (see `sync.audit.acting_as`).
    UserOrSystem: TypeAlias = AbstractBaseUser | None

Status = MappingVersion.Status
ENTRY_BATCH = 500


# --- shared -------------------------------------------------------------------------------


def _actor(user: UserOrSystem) -> str:
    if user is not None:
        return actor_for_user(user)
    return current_actor() or UNKNOWN_ACTOR


def clean_and_save(
    obj: models.Model, *, user: UserOrSystem, invalid: type[Exception] = MappingInvalid
) -> None:
    """full_clean() then save, attributing the history row to `user` (when there is one).
    A validation error is raised as `invalid` with its messages."""
    try:
        obj.full_clean()
    except ValidationError as error:
        raise invalid(
            error.message_dict if hasattr(error, "error_dict") else error.messages
        ) from error
    if user is not None:
        obj._history_user = user
    obj.save()


def _day(value: Any, *, name: str) -> dt.date:
    if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
        raise MappingInvalid({name: f"A date is required, got {value!r}."})
    return value


def _version_lock(version: MappingVersion) -> MappingVersion:
    """The version re-read under a row lock: concurrent moves of one version queue up."""
    return (
        MappingVersion.objects.select_for_update().select_related("mapping_set").get(pk=version.pk)
    )


def _move(version: MappingVersion, *, to: str) -> None:
    if not MappingVersion.transition_allowed(from_status=version.status, to_status=to) or (
        version.status == to
    ):
        raise MappingTransitionRefused(
            model="MappingVersion",
            pk=version.pk,
            field="status",
            from_status=version.status,
            to_status=to,
        )
    version.status = to


def _entries_copy(*, source: MappingVersion, target: MappingVersion, user: UserOrSystem) -> int:
    rows = source.entries.values_list("source_value", "target_value", "attributes")
    entries = [
        MappingEntry(version=target, source_value=s, target_value=t, attributes=a or {})
        for s, t, a in rows
    ]
    bulk_create_with_history(
        entries,
        MappingEntry,
        batch_size=ENTRY_BATCH,
        default_user=user,
        custom_historical_attrs={"history_actor": _actor(user)},
    )
    return len(entries)


# --- mapping sets and versions ------------------------------------------------------------


def mapping_set_create(
    *,
    slug: str,
    name: str,
    kind: str,
    system: str = "",
    connector: str = "",
    description: str = "",
    user: UserOrSystem,
) -> MappingSet:
    """Create a mapping set (no versions yet). Raises MappingInvalid (e.g. slug taken)."""
    mapping_set = MappingSet(
        slug=slug,
        name=name,
        kind=kind,
        system=system,
        connector=connector,
        description=description,
    )
    with transaction.atomic():
        clean_and_save(mapping_set, user=user)
    return mapping_set


@transaction.atomic
def mapping_version_create_draft(
    *,
    mapping_set: MappingSet,
    based_on: MappingVersion | None = None,
    user: UserOrSystem,
    notes: str = "",
) -> MappingVersion:
    """Open a new draft, numbered after the set's last version, with `based_on`'s entries.

    `based_on` may be any version of the same set (None: an empty draft). The set row is
    locked so that concurrent drafts get distinct numbers. Raises MappingError when
    `based_on` belongs to another set.
    """
    locked_set = MappingSet.objects.select_for_update().get(pk=mapping_set.pk)
    if based_on is not None and based_on.mapping_set_id != locked_set.pk:
        raise MappingError(f"{based_on} is not a version of {locked_set}.")
    last = locked_set.versions.aggregate(last=Max("number"))["last"] or 0
    version = MappingVersion(
        mapping_set=locked_set,
        number=last + 1,
        based_on=based_on,
        created_by=user,
        notes=notes,
    )
    clean_and_save(version, user=user)
    if based_on is not None:
        _entries_copy(source=based_on, target=version, user=user)
    return version


@transaction.atomic
def mapping_version_update(
    *, version: MappingVersion, effective_from: dt.date | None, notes: str, user: UserOrSystem
) -> MappingVersion:
    """Change a draft's or in-review version's planned effective date and notes.

    Raises MappingVersionFrozen for a published or retired version.
    """
    locked = _version_lock(version)
    if locked.status in MappingVersion.FROZEN_STATUSES:
        raise MappingVersionFrozen(f"{locked} is {locked.status}: it cannot be edited.")
    if effective_from is not None:
        _day(effective_from, name="effective_from")
    locked.effective_from = effective_from
    locked.notes = notes
    clean_and_save(locked, user=user)
    return locked


@transaction.atomic
def mapping_entry_set(
    *,
    version: MappingVersion,
    source_value: str,
    target_value: str,
    attributes: dict[str, Any] | None = None,
    user: UserOrSystem,
) -> MappingEntry:
    """Map `source_value` to `target_value` (and `attributes`) in a draft: add or change.

    Idempotent: setting the same values again writes nothing. Raises MappingVersionFrozen
    unless the version is a draft, MappingInvalid for bad values.
    """
    locked = _version_lock(version)
    if not locked.is_editable:
        raise MappingVersionFrozen(
            f"{locked} is {locked.get_status_display().lower()}: its entries cannot change."
            + (" Send it back to draft first." if locked.status == Status.IN_REVIEW else "")
        )
    attributes = {} if attributes is None else attributes
    entry = MappingEntry.objects.filter(version=locked, source_value=source_value).first()
    if entry is None:
        entry = MappingEntry(version=locked, source_value=source_value)
    elif entry.target_value == target_value and entry.attributes == attributes:
        return entry
    entry.target_value = target_value
    entry.attributes = attributes
    clean_and_save(entry, user=user)
    return entry


@transaction.atomic
def mapping_entry_delete(*, version: MappingVersion, source_value: str, user: UserOrSystem) -> bool:
    """Remove `source_value` from a draft. Idempotent: False when it was not there.

    Raises MappingVersionFrozen unless the version is a draft.
    """
    locked = _version_lock(version)
    if not locked.is_editable:
        raise MappingVersionFrozen(
            f"{locked} is {locked.get_status_display().lower()}: its entries cannot change."
        )
    entry = MappingEntry.objects.filter(version=locked, source_value=source_value).first()
    if entry is None:
        return False
    if user is not None:
        entry._history_user = user
    entry.delete()
    return True


@transaction.atomic
def mapping_version_submit(*, version: MappingVersion, user: UserOrSystem) -> MappingVersion:
    """Draft → in review; its entries freeze. Raises MappingVersionEmpty without entries."""
    locked = _version_lock(version)
    _move(locked, to=Status.IN_REVIEW)
    if not locked.entries.exists():
        raise MappingVersionEmpty(f"{locked} has no entries: there is nothing to review.")
    locked.submitted_by = user
    locked.submitted_at = timezone.now()
    clean_and_save(locked, user=user)
    return locked


@transaction.atomic
def mapping_version_send_back(
    *, version: MappingVersion, user: UserOrSystem, reason: str = ""
) -> MappingVersion:
    """In review → draft, so that its entries can change again; `reason` joins the notes."""
    locked = _version_lock(version)
    _move(locked, to=Status.DRAFT)
    if reason:
        who = _actor(user)
        locked.notes = f"{locked.notes}\n\nSent back by {who}: {reason}".strip()
    locked.submitted_by = None
    locked.submitted_at = None
    clean_and_save(locked, user=user)
    return locked


def _effective_date_clash_check(
    *, mapping_set_id: int, effective_from: dt.date, exclude_pk: int | None = None
) -> None:
    clash = (
        MappingVersion.objects.filter(
            mapping_set_id=mapping_set_id,
            status=Status.PUBLISHED,
            effective_from=effective_from,
        )
        .exclude(pk=exclude_pk)
        .first()
    )
    if clash is not None:
        raise MappingEffectiveDateTaken(
            f"{clash} is already effective from {effective_from}: choose another date "
            "or retire it first."
        )


def _four_eyes_check(version: MappingVersion, *, user: UserOrSystem) -> None:
    """Raise MappingFourEyesRefused when `user` (a person) authored `version`.

    Authors: its creator, its submitter and whoever wrote any of its entries, deleted ones
    included. Entry writes are read from the entries' history in one query, by user or by the
    actor string, which also catches a write made on the user's behalf (`acting_as`).
    """
    if user is None:
        return
    roles = [
        role
        for role, author_id in (
            ("created", version.created_by_id),
            ("submitted", version.submitted_by_id),
        )
        if author_id == user.pk
    ]
    if MappingEntry.history.filter(
        Q(history_user_id=user.pk) | Q(history_actor=actor_for_user(user)),
        version_id=version.pk,
    ).exists():
        roles.append("edited entries of")
    if roles:
        did = " and ".join([", ".join(roles[:-1]), roles[-1]] if len(roles) > 1 else roles)
        # Not `{version}`: its status already reads "published" here (moved, not saved).
        raise MappingFourEyesRefused(
            f"{version.mapping_set} v{version.number}: {actor_for_user(user)} {did} it, so "
            "another mapping admin must publish it (four eyes)."
        )


@transaction.atomic
def mapping_version_publish(
    *, version: MappingVersion, effective_from: dt.date, user: UserOrSystem
) -> MappingVersion:
    """In review → published, mapping records dated `effective_from` or later.

    Four eyes: a person (`user` set) may not publish a version they created, submitted or
    wrote an entry of (MappingFourEyesRefused). `user=None` means the system acts (demo
    set-up, data migrations) and is allowed to publish alone.
    Older published versions stay published: each record resolves with the version effective
    on its own date; retire a version explicitly. The set row is locked, so two publishes in
    one set are serialised. Raises MappingTransitionRefused unless in review, then
    MappingFourEyesRefused, then MappingEffectiveDateTaken when another published version of
    the set is effective from the same date. Nothing is written when it refuses.
    """
    _day(effective_from, name="effective_from")
    MappingSet.objects.select_for_update().filter(pk=version.mapping_set_id).first()
    locked = _version_lock(version)
    _move(locked, to=Status.PUBLISHED)
    _four_eyes_check(locked, user=user)
    _effective_date_clash_check(
        mapping_set_id=locked.mapping_set_id, effective_from=effective_from, exclude_pk=locked.pk
    )
    locked.effective_from = effective_from
    locked.published_by = user
    locked.published_at = timezone.now()
    clean_and_save(locked, user=user)
    return locked


@transaction.atomic
def mapping_version_retire(*, version: MappingVersion, user: UserOrSystem) -> MappingVersion:
    """Published → retired: the version stops mapping records of any date (kept for audit).

    Records dated in its period fall back to the previous published version, if any.
    """
    locked = _version_lock(version)
    _move(locked, to=Status.RETIRED)
    locked.retired_by = user
    locked.retired_at = timezone.now()
    clean_and_save(locked, user=user)
    return locked


@transaction.atomic
def mapping_version_rollback(
    *,
    mapping_set: MappingSet,
    to_version: MappingVersion,
    effective_from: dt.date,
    user: UserOrSystem,
) -> MappingVersion:
    """Roll back to `to_version`'s entries with a NEW version planned from `effective_from`.

    A person's rollback (`user` set) goes through review like any other change: it opens a
    draft copy of `to_version` (`based_on` it, notes "Rollback to version N."), plans it from
    `effective_from`, submits it for review by `user` and returns it IN REVIEW. It maps
    nothing until another mapping admin publishes it with `mapping_version_publish` (the
    requester authored it, so four eyes refuses them). The system (`user=None`: data
    migrations, demo set-up) publishes the copy in the same step and gets it back PUBLISHED.

    History stays linear: nothing is un-published or edited. `to_version` must be a published
    or retired version of the set. All or nothing: raises MappingError (wrong set, never
    published), MappingInvalid (not a date) or MappingEffectiveDateTaken (a published version
    of the set is already effective from that date; checked again on publishing).
    """
    if to_version.mapping_set_id != mapping_set.pk:
        raise MappingError(f"{to_version} is not a version of {mapping_set}.")
    if to_version.status not in MappingVersion.FROZEN_STATUSES:
        raise MappingError(f"{to_version} was never published: there is nothing to roll back to.")
    _day(effective_from, name="effective_from")
    MappingSet.objects.select_for_update().filter(pk=mapping_set.pk).first()
    _effective_date_clash_check(mapping_set_id=mapping_set.pk, effective_from=effective_from)
    draft = mapping_version_create_draft(
        mapping_set=mapping_set,
        based_on=to_version,
        user=user,
        notes=f"Rollback to version {to_version.number}.",
    )
    draft = mapping_version_update(
        version=draft, effective_from=effective_from, notes=draft.notes, user=user
    )
    submitted = mapping_version_submit(version=draft, user=user)
    if user is not None:
        return submitted
    return mapping_version_publish(version=submitted, effective_from=effective_from, user=None)


@dataclass(frozen=True)
class CsvImported:
    added: int
    changed: int
    removed: int
    unchanged: int


@transaction.atomic
def mapping_version_import_csv(
    *, version: MappingVersion, text: str, replace: bool = False, user: UserOrSystem
) -> CsvImported:
    """Add or change a draft's entries from CSV (`sync.mappings.csv_io`'s format); with
    `replace`, also remove the entries the file does not list.

    All or nothing: any bad row (see `entries_csv_parse`; or a target value that is not in the
    set's reference list, `mapping_reference_list`) raises MappingInvalid whose messages name
    each bad row ("Row 3: …") and nothing is written. Raises MappingVersionFrozen unless the
    version is a draft. Idempotent: importing the same file again writes nothing. Entries are
    written in bulk with history naming `user`.
    """
    locked = _version_lock(version)
    if not locked.is_editable:
        raise MappingVersionFrozen(f"{locked} is not a draft: nothing can be imported into it.")
    parsed = entries_csv_parse(text)
    reference = mapping_reference_list(mapping_set=locked.mapping_set)
    for row in parsed.rows:
        if reference is not None and row.target_value not in reference.values:
            parsed.refuse(row.number, f"Target {row.target_value!r} is not {reference.label}.")
    existing = {entry.source_value: entry for entry in locked.entries.all()}
    added, changed = [], []
    for row in parsed.rows:
        entry = existing.get(row.source_value) or MappingEntry(
            version=locked, source_value=row.source_value
        )
        if entry.pk and (entry.target_value, entry.attributes) == (
            row.target_value,
            row.attributes,
        ):
            continue
        entry.target_value, entry.attributes = row.target_value, row.attributes
        try:  # the file has no duplicate sources and matched existing ones: no unique checks
            entry.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            parsed.refuse(row.number, "; ".join(error.messages))
        (changed if entry.pk else added).append(entry)
    if parsed.errors:
        raise MappingInvalid(csv_errors_describe(sorted(parsed.errors)))
    listed = {row.source_value for row in parsed.rows}
    gone = [entry for source, entry in existing.items() if replace and source not in listed]
    history = {"default_user": user, "custom_historical_attrs": {"history_actor": _actor(user)}}
    bulk_create_with_history(added, MappingEntry, batch_size=ENTRY_BATCH, **history)
    bulk_update_with_history(
        changed, MappingEntry, ["target_value", "attributes"], batch_size=ENTRY_BATCH, **history
    )
    for entry in gone:  # one by one, so each removal leaves its history row
        if user is not None:
            entry._history_user = user
        entry.delete()
    unchanged = len(parsed.rows) - len(added) - len(changed)
    return CsvImported(len(added), len(changed), len(gone), unchanged)
