"""Domain errors of the canonical model: raised for business reasons, never retried blindly."""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused an operation. Not transient: park it in an exception queue."""


class IllegalTransition(DomainError):
    """A record's lifecycle status was asked to move along a pair its model does not allow.

    Raised before anything is written, so the database is unchanged.
    """

    def __init__(
        self, *, model: str, pk: object, field: str, from_status: str, to_status: str
    ) -> None:
        self.model = model
        self.pk = pk
        self.field = field
        self.from_status = from_status
        self.to_status = to_status
        super().__init__(
            f"{model} {pk}: {field} may not move from {from_status!r} to {to_status!r}"
        )


class CurrencyMismatch(DomainError, ValueError):
    """Arithmetic or comparison between amounts in different currencies (convert first)."""


class UnknownStatus(DomainError, ValueError):
    """A record was given a lifecycle status that is not one of its model's choices."""
