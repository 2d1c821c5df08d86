"""Request, Response and SandboxError: the small HTTP vocabulary every dialect handler speaks.

A handler receives a `Request` and returns a `Response` (or raises `SandboxError`). It never sees
WSGI. Bad input must end as a `SandboxError` with a 4xx status; the dialect's `render_error`
turns it into the vendor's error body. Anything else a handler raises is a bug and is answered
with the vendor's 500 shape (and logged).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import orjson


class SandboxError(Exception):
    """An error answer. `code` is the vendor's error code (e.g. MALFORMED_QUERY, invalidFilter).

    `fields` names the offending fields when the vendor reports them; `headers` are extra
    response headers; `extra` carries dialect-specific detail for `render_error`.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: list[str] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


# Codes the core itself raises; dialects map them to their own vocabulary in render_error.
NOT_FOUND = "NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
MALFORMED_JSON = "MALFORMED_JSON"
UNAUTHORIZED = "UNAUTHORIZED"
RATE_LIMITED = "RATE_LIMITED"
CONCURRENCY_LIMITED = "CONCURRENCY_LIMITED"
INJECTED_FAULT = "INJECTED_FAULT"
INTERNAL = "INTERNAL"


@dataclass
class Request:
    method: str
    path: str  # below the dialect prefix, e.g. "/services/data/v60.0/query"
    query_string: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    base_url: str  # scheme://host[:port] + dialect prefix, e.g. "http://127.0.0.1:8100/salesforce"
    system: str = ""
    state: dict[str, Any] = field(default_factory=dict)  # per-request scratch (auth principal…)
    # Schema drift set by fault injection: dialects pass every rendered record through it.
    drift: Callable[[dict], dict] = field(default=lambda record: record)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body decoded as JSON; raises SandboxError(400, MALFORMED_JSON) when it is not."""
        if not self.body:
            raise SandboxError(400, MALFORMED_JSON, "The request body is empty; JSON expected.")
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise SandboxError(400, MALFORMED_JSON, f"Malformed JSON: {exc}") from exc

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body (OAuth token requests)."""
        try:
            text = self.body.decode()
        except UnicodeDecodeError as exc:
            raise SandboxError(400, MALFORMED_JSON, "The body is not UTF-8.") from exc
        return {key: values[-1] for key, values in parse_qs(text, keep_blank_values=True).items()}


def _json_default(value: Any) -> Any:
    # Vendors send money as JSON numbers; a Decimal from a dialect is written as a number with
    # exactly its digits (never through float).
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(format(value, "f").encode())
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None):
        merged = {"Content-Type": "application/json;charset=UTF-8", **(headers or {})}
        return cls(status=status, body=orjson.dumps(payload, default=_json_default), headers=merged)

    @classmethod
    def empty(cls, status: int = 204, headers: Mapping[str, str] | None = None):
        return cls(status=status, body=b"", headers=dict(headers or {}))
