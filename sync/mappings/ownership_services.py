"""Writes to field ownership rules: the only way they change.

Every service is keyword-only, runs in one transaction, validates with `full_clean()` before
saving, records the acting `user` on the history rows (None means the system: the actor set
with `sync.audit.acting_as`, else `system:unknown`), and raises an `OwnershipError` (a
`sync.errors.DomainError`) with nothing written when it refuses.

A person changes ownership through an `OwnershipChange`: created as a draft, submitted, then
published by ANOTHER mapping admin (four eyes, `ownership_change_publish`, the same rule as
`mapping_version_publish`), which writes the rule with `ownership_rule_set`, the one code path
the admin and the shell use too. The system (`user=None`: demo set-up, data migrations) is not
a person and publishes alone. Status moves are not idempotent: repeating one raises
OwnershipTransitionRefused.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db import models, transaction
from django.utils import timezone

from sync.audit import actor_for_user
from sync.mappings.errors import (
    OwnershipFourEyesRefused,
    OwnershipInvalid,
    OwnershipOverlap,
    OwnershipTransitionRefused,
)
from sync.mappings.models import OwnershipChange, OwnershipRule
from sync.mappings.services import clean_and_save

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    # The acting person; None when the system acts (see `sync.audit.acting_as`).
    UserOrSystem: TypeAlias = AbstractBaseUser | None


# --- ownership rules ----------------------------------------------------------------------


def _ownership_save(rule: OwnershipRule, *, user: UserOrSystem) -> None:
    if isinstance(rule.effective_from, dt.date):
        clash = rule.overlapping_rules().first()
        if clash is not None:
            raise OwnershipOverlap(
                f"{rule.entity}.{rule.field or '*'}: overlaps the rule “{clash}”; "
                "end that rule first or choose other dates.",
                code="overlap",
            )
    _ownership_clean_save(rule, user=user)


@transaction.atomic
def ownership_rule_set(
    *,
    entity: str,
    field: str = "",
    owner_system: str,
    effective_from: dt.date,
    effective_to: dt.date | None = None,
    notes: str = "",
    user: UserOrSystem,
) -> OwnershipRule:
    """Make `owner_system` the owner of `entity`.`field` (blank: the entity) from a date.

    - A rule for the same key starting the same day is changed in place (idempotent).
    - An open-ended rule for the key that started earlier is ended on `effective_from`
      (a handover); its history row records it.
    - Any other overlap raises OwnershipOverlap and nothing is written.
    The key's rules are locked (select_for_update) while this runs.
    """
    rules = list(OwnershipRule.objects.select_for_update().filter(entity=entity, field=field))
    rule = next((r for r in rules if r.effective_from == effective_from), None)
    if rule is None:
        predecessor = next(
            (
                r
                for r in rules
                if r.effective_to is None
                and isinstance(effective_from, dt.date)
                and r.effective_from < effective_from
            ),
            None,
        )
        if predecessor is not None:
            predecessor.effective_to = effective_from
            _ownership_clean_save(predecessor, user=user)
        rule = OwnershipRule(entity=entity, field=field, effective_from=effective_from)
    elif (rule.owner_system, rule.effective_to, rule.notes) == (owner_system, effective_to, notes):
        return rule
    rule.owner_system = owner_system
    rule.effective_to = effective_to
    rule.notes = notes
    _ownership_save(rule, user=user)
    return rule


@transaction.atomic
def ownership_rule_update(
    *,
    rule: OwnershipRule,
    owner_system: str,
    effective_from: dt.date,
    effective_to: dt.date | None,
    notes: str,
    user: UserOrSystem,
) -> OwnershipRule:
    """Change one rule's owner, dates or notes (its entity and field stay).

    Raises OwnershipOverlap when the new dates would overlap another rule of the same key.
    """
    locked = OwnershipRule.objects.select_for_update().get(pk=rule.pk)
    locked.owner_system = owner_system
    locked.effective_from = effective_from
    locked.effective_to = effective_to
    locked.notes = notes
    _ownership_save(locked, user=user)
    return locked


# --- ownership changes (review and publish) -----------------------------------------------

ChangeStatus = OwnershipChange.Status


def _change_lock(change: OwnershipChange) -> OwnershipChange:
    """The change re-read under a row lock: concurrent moves of one change queue up."""
    return OwnershipChange.objects.select_for_update().get(pk=change.pk)


def _change_move(change: OwnershipChange, *, to: str) -> None:
    if not OwnershipChange.transition_allowed(from_status=change.status, to_status=to):
        raise OwnershipTransitionRefused(
            model="OwnershipChange",
            pk=change.pk,
            field="status",
            from_status=change.status,
            to_status=to,
        )
    change.status = to


def _change_four_eyes_check(change: OwnershipChange, *, user: UserOrSystem) -> None:
    """Raise OwnershipFourEyesRefused when `user` (a person) created or submitted `change`."""
    if user is None:
        return
    roles = [
        role
        for role, author_id in (
            ("created", change.created_by_id),
            ("submitted", change.submitted_by_id),
        )
        if author_id == user.pk
    ]
    if roles:
        raise OwnershipFourEyesRefused(
            f"Ownership change {change.pk}: {actor_for_user(user)} {' and '.join(roles)} it, "
            "so another mapping admin must publish it (four eyes)."
        )


@transaction.atomic
def ownership_change_create(
    *,
    entity: str,
    field: str = "",
    owner_system: str,
    effective_from: dt.date,
    effective_to: dt.date | None = None,
    reason: str,
    user: UserOrSystem,
) -> OwnershipChange:
    """Propose that `owner_system` owns `entity`.`field` (blank: the entity) from a date.

    Returns a DRAFT that changes no rule yet. Raises OwnershipInvalid for bad values (an
    unknown system, a name not in snake case, an end before the start, no reason).
    """
    change = OwnershipChange(
        entity=entity,
        field=field,
        owner_system=owner_system,
        effective_from=effective_from,
        effective_to=effective_to,
        reason=reason,
        created_by=user,
    )
    _ownership_clean_save(change, user=user)
    return change


@transaction.atomic
def ownership_change_submit(*, change: OwnershipChange, user: UserOrSystem) -> OwnershipChange:
    """Draft → submitted: it waits for another mapping admin to publish or withdraw it."""
    locked = _change_lock(change)
    _change_move(locked, to=ChangeStatus.SUBMITTED)
    locked.submitted_by = user
    locked.submitted_at = timezone.now()
    _ownership_clean_save(locked, user=user)
    return locked


@transaction.atomic
def ownership_change_publish(*, change: OwnershipChange, user: UserOrSystem) -> OwnershipChange:
    """Submitted → published: writes the rule with `ownership_rule_set` (a handover ends the
    open-ended rule before it; the same start day changes that rule in place).

    Four eyes: a person may not publish a change they created or submitted
    (OwnershipFourEyesRefused); `user=None` (the system) publishes alone. Raises
    OwnershipTransitionRefused unless submitted, then OwnershipFourEyesRefused, then
    OwnershipOverlap / OwnershipInvalid from the rule. Nothing is written when it refuses.
    """
    locked = _change_lock(change)
    _change_move(locked, to=ChangeStatus.PUBLISHED)
    _change_four_eyes_check(locked, user=user)
    locked.rule = ownership_rule_set(
        entity=locked.entity,
        field=locked.field,
        owner_system=locked.owner_system,
        effective_from=locked.effective_from,
        effective_to=locked.effective_to,
        notes=f"Ownership change {locked.pk}: {locked.reason}",
        user=user,
    )
    locked.decided_by = user
    locked.decided_at = timezone.now()
    _ownership_clean_save(locked, user=user)
    return locked


@transaction.atomic
def ownership_change_withdraw(
    *, change: OwnershipChange, user: UserOrSystem, note: str = ""
) -> OwnershipChange:
    """Draft or submitted → withdrawn (by its author, or by a reviewer who declines it); no
    rule changes. `note` joins the reason. Raises OwnershipTransitionRefused when published
    or already withdrawn."""
    locked = _change_lock(change)
    _change_move(locked, to=ChangeStatus.WITHDRAWN)
    if note:
        who = actor_for_user(user) if user is not None else "the system"
        locked.reason = f"{locked.reason}\n\nWithdrawn by {who}: {note}"
    locked.decided_by = user
    locked.decided_at = timezone.now()
    _ownership_clean_save(locked, user=user)
    return locked


def _ownership_clean_save(obj: models.Model, *, user: UserOrSystem) -> None:
    clean_and_save(obj, user=user, invalid=OwnershipInvalid)
