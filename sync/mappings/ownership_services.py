"""Writes to field ownership rules: the only way they change.

Every service is keyword-only, runs in one transaction, validates with `full_clean()` before
saving, records the acting `user` on the history rows (None means the system: the actor set
with `sync.audit.acting_as`, else `system:unknown`), and raises an `OwnershipError` (a
`sync.errors.DomainError`) with nothing written when it refuses.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import models, transaction

from sync.mappings.errors import OwnershipInvalid, OwnershipOverlap
from sync.mappings.models import OwnershipRule

if TYPE_CHECKING:
    from typing import TypeAlias

    from django.contrib.auth.models import AbstractBaseUser

    # The acting person; None when the system acts (see `sync.audit.acting_as`).
    UserOrSystem: TypeAlias = AbstractBaseUser | None


def _save(obj: models.Model, *, user: UserOrSystem) -> None:
    """full_clean() then save, attributing the history row to `user` (when there is one)."""
    try:
        obj.full_clean()
    except ValidationError as error:
        raise OwnershipInvalid(
            error.message_dict if hasattr(error, "error_dict") else error.messages
        ) from error
    if user is not None:
        obj._history_user = user
    obj.save()


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
    _save(rule, user=user)


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
            _save(predecessor, user=user)
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
