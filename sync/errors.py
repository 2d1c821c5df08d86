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


class StaleRecord(DomainError):
    """A write was based on a version of the record that is no longer the stored one.

    Someone else saved the row after this copy was loaded. Nothing was written: reload the
    record (`refresh_from_db`) and apply the change again, or let the batch be retried.
    """

    def __init__(self, *, model: str, pk: object, loaded_version: int, stored_version: int) -> None:
        self.model = model
        self.pk = pk
        self.loaded_version = loaded_version
        self.stored_version = stored_version
        super().__init__(
            f"{model} {pk}: this copy was loaded at version {loaded_version} but the stored "
            f"record is at version {stored_version}; reload it and apply the change again"
        )


class ImmutableRecord(DomainError):
    """A write would change the content of a record whose stored status is frozen.

    A posted, invoiced or reversed record is corrected by a reversal plus a new record, never
    by an edit. Raised before anything is written.
    """

    def __init__(self, *, model: str, pk: object, status: str, fields: list[str]) -> None:
        self.model = model
        self.pk = pk
        self.status = status
        self.fields = fields
        super().__init__(
            f"{model} {pk} is {status!r} and can no longer be edited (changed: "
            f"{', '.join(fields)}); correct it with a reversal and a new record"
        )


class PayloadError(ValueError):
    """A payload is not a record we can read; the message names every field that is wrong.

    Raised by the vendor readers (`sync/integrations/<vendor>/`); the processing protocol parks
    the inbox item as MALFORMED_PAYLOAD (`sync.pipeline.processing`).
    """
