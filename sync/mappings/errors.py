"""Errors of versioned mappings and field ownership: business refusals, never retried blindly.

Each is a `sync.errors.DomainError`. Those that report invalid input are also Django
`ValidationError`s, so admin forms and actions show them as messages without special cases.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from sync.errors import DomainError, IllegalTransition


class MappingError(DomainError):
    """A mapping set, version or entry operation was refused. Nothing was written."""


class MappingVersionFrozen(MappingError):
    """The entries of a version that is not a draft cannot be added, changed or deleted.

    Published and retired versions are immutable; a version in review is frozen so that what
    was reviewed is what gets published (send it back to draft to change it).
    """


class MappingTransitionRefused(MappingError, IllegalTransition):
    """A version's status was asked to move along a pair the lifecycle does not allow."""


class MappingEffectiveDateTaken(MappingError):
    """Another published version of the same set is already effective from that date."""


class MappingFourEyesRefused(MappingError):
    """A person asked to publish a version they authored: another mapping admin must publish it.

    Its authors are whoever created it (`created_by`), submitted it (`submitted_by`) or wrote
    any of its entries (their history rows). The system (`user=None`) is not refused.
    """


class MappingVersionEmpty(MappingError):
    """A version without entries cannot be submitted for review (it would map nothing)."""


class MappingInvalid(MappingError, ValidationError):
    """A set, version or entry failed validation (`full_clean`); see `message_dict`."""


class OwnershipError(DomainError):
    """An ownership rule operation was refused. Nothing was written."""


class OwnershipOverlap(OwnershipError, ValidationError):
    """Two rules for the same entity and field would be in force on the same day."""


class OwnershipInvalid(OwnershipError, ValidationError):
    """An ownership rule failed validation (`full_clean`); see `message_dict`."""


class OwnershipTransitionRefused(OwnershipError, IllegalTransition):
    """An ownership change's status was asked to move along a pair its lifecycle does not allow."""


class OwnershipFourEyesRefused(OwnershipError):
    """A person asked to publish an ownership change they created or submitted: another mapping
    admin must publish it. The system (`user=None`) is not refused."""
