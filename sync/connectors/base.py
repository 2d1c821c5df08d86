"""What every connector shares: its configuration, the page it yields, and the one error type.

No HTTP here (that is `http.py`): the pipeline imports these names to classify outcomes without
pulling in the HTTP client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

# Failure kinds: how the caller must react (STYLE.md rule 5; sync.pipeline.outbox uses the same).
TRANSIENT = "transient"  # retry with backoff and jitter (honour retry_after)
PERMANENT = "permanent"  # the record is wrong: exception queue, no retry
INDETERMINATE = "indeterminate"  # the write may have happened: look it up before anything else
CONFIGURATION = "configuration"  # credentials, base URL, permissions: ops must fix the connection
KINDS = (TRANSIENT, PERMANENT, INDETERMINATE, CONFIGURATION)

CORRELATION_HEADER = "X-Correlation-ID"

# The correlation id of the work in hand; `VendorHttp` sends it on every request.
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)


@contextlib.contextmanager
def correlation_scope(correlation_id: str | None) -> Iterator[None]:
    """Every request made inside the block carries `correlation_id` (unless one is passed)."""
    token = correlation_id_var.set(correlation_id)
    try:
        yield
    finally:
        correlation_id_var.reset(token)


@dataclass(frozen=True)
class ConnectionConfig:
    """How to reach one external system. Only these values differ between sandbox and tenant.

    `credentials` keys depend on the dialect (see each connector's docstring). `rate_per_second`
    None means no client-side budget beyond `max_concurrency` (the target's 429s still apply).
    """

    system: str
    base_url: str
    credentials: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0
    connect_timeout_seconds: float = 5.0
    max_concurrency: int = 4
    rate_per_second: float | None = None
    correlation_header: str = CORRELATION_HEADER
    name: str = ""  # the connection's name: how its requests are labelled in /metrics

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if self.rate_per_second is not None and self.rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive (or None for no budget)")
        if self.timeout_seconds <= 0 or self.connect_timeout_seconds <= 0:
            raise ValueError("timeouts must be positive")

    @classmethod
    def from_connection(cls, connection: Any) -> ConnectionConfig:
        """From a `sync.pipeline.models.Connection` row (duck-typed: no model import here)."""
        rate = connection.rate_per_second
        return cls(
            system=connection.dialect,
            base_url=connection.base_url,
            credentials={k: str(v) for k, v in connection.credentials_dict().items()},
            timeout_seconds=float(connection.timeout_seconds),
            max_concurrency=int(connection.max_concurrency),
            rate_per_second=None if rate is None else float(rate),
            name=getattr(connection, "name", ""),
        )


class TransportError(Exception):
    """Any failure talking to a target, classified once at the connector boundary.

    `kind` is one of TRANSIENT, PERMANENT, INDETERMINATE, CONFIGURATION; `status` the HTTP
    status (None when no answer came); `vendor_code` the vendor's own error code
    (REQUEST_LIMIT_EXCEEDED, USER_ERROR, rate_limit…); `retry_after` seconds the target asked
    us to wait (a floor for the caller's backoff), when it said so.
    """

    def __init__(
        self,
        *,
        kind: str,
        message: str,
        status: int | None = None,
        vendor_code: str = "",
        retry_after: float | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown failure kind {kind!r}")
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.vendor_code = vendor_code
        self.message = message
        self.retry_after = retry_after
        self.method = method
        self.url = url

    @property
    def retryable(self) -> bool:
        return self.kind == TRANSIENT

    def __str__(self) -> str:
        where = f" {self.method} {self.url}" if self.method else ""
        status = f" {self.status}" if self.status is not None else ""
        code = f" {self.vendor_code}" if self.vendor_code else ""
        return f"{self.kind}{status}{code}{where}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"TransportError(kind={self.kind!r}, status={self.status!r}, "
            f"vendor_code={self.vendor_code!r}, retry_after={self.retry_after!r})"
        )


@dataclass(frozen=True)
class RejectedRow:
    """A source row that could not be read into a record (CSV drops): where and why."""

    row_number: int
    message: str
    column: str = ""  # the offending column, when one is to blame
    raw: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    """One page of a pull.

    `next_cursor` resumes the same pull after this page (pass it back as `cursor=`); None on
    the last page. `position` is the pull position this page reaches: the highest change time
    seen so far in this pull (a last-modified time, or a feed position); it may become the
    next pull's `since` only after the last page has been processed.
    """

    records: list[dict[str, Any]]
    next_cursor: str | None
    position: str | None
    rejected: tuple[RejectedRow, ...] = ()


class SourceConnector(Protocol):
    """A system a cycle pulls from. `pull` yields the pages of `entity` changed after `since`
    (a pull position in the vendor's own format), resuming after `cursor` when given; raises
    TransportError. `close` frees the connection pool (the caller owns the connector)."""

    def pull(
        self, *, entity: str, since: str | None = None, cursor: str | None = None
    ) -> Iterator[Page]: ...

    def close(self) -> None: ...


class TargetConnector(Protocol):
    """A target the outbox delivers to. `upsert_by_external_id` returns the target's id and is
    safe to repeat; `get_by_external_id` returns the target's record with its id under "id",
    or None when absent (how an INDETERMINATE write is resolved). Both raise TransportError.
    `close` frees the connection pool."""

    def upsert_by_external_id(
        self,
        *,
        record_type: str,
        external_id: str,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> str: ...

    def get_by_external_id(
        self, *, record_type: str, external_id: str
    ) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


class SignatureInvalid(ValueError):
    """A webhook whose signature does not verify (tampered, wrong secret, too old)."""


class SignatureMissing(SignatureInvalid):
    """A webhook that carries no signature (or no timestamp) at all."""


def position_max(current: str | None, candidate: str | None) -> str | None:
    """The later of two ISO 8601 timestamps with offsets (kept in the vendor's own format).

    A value that does not parse is ignored rather than trusted as a pull position.
    """
    if candidate is None or _instant(candidate) is None:
        return current
    if current is None or _instant(current) is None:
        return candidate
    return candidate if _instant(candidate) > _instant(current) else current


def _instant(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def instant_read(value: Any) -> datetime | None:
    """A record's change time: unix seconds, or ISO 8601 (no offset: UTC); None when unreadable."""
    if isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, tz=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # NetSuite's SuiteQL times have no offset: the sandbox (and our accounts) run in UTC.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso_date(text: str) -> date:
    """A calendar date written YYYY-MM-DD and nothing else. `date.fromisoformat` also reads
    20261014 and ISO week dates (2026-W42-3), which no connected system sends and a person
    checking the record would misread. Raises ValueError."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"{text[:40]!r} is not a YYYY-MM-DD date")
    return date.fromisoformat(text)
