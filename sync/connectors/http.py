"""The one way out to the network (STYLE.md rule 8): timeouts, auth, budgets, error classes.

`VendorHttp` wraps a pooled `httpx.Client` for one connection. Every request:
- carries the correlation id (argument, else `base.correlation_id_var`, else a fresh one);
- takes a token from the client-side rate budget and a slot of the concurrency cap;
- is authenticated by the dialect's `Auth` (a 401 refreshes an OAuth token once);
- ends as an `Answer` (2xx, or a 404 the caller declared "absent") or a `TransportError`
  whose `kind` is decided here, once (`failures.failure_classify` for an error answer,
  `exception_classify` for none).

Idempotent requests (GET/HEAD, or `idempotent=True` such as a SuiteQL POST or a token
request) are retried here a bounded number of times on transient failures. Writes never are:
the outbox retries them after resolving indeterminate outcomes by lookup.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import orjson

from sync.connectors.auth import Auth, NoAuth
from sync.connectors.base import (
    CONFIGURATION,
    INDETERMINATE,
    TRANSIENT,
    ConnectionConfig,
    TransportError,
    correlation_id_var,
)
from sync.connectors.failures import (
    ABSENT,
    RATE_LIMIT_CODES,
    error_details,
    failure_classify,
    limit_info_parse,
    retry_after_parse,
)
from sync.connectors.limits import ConcurrencyCap, TokenBucket
from sync.connectors.stats import outcome_of, request_stats

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# A 429 (or a vendor limit) that names no wait: back off this long (Kantata sends none).
DEFAULT_RATE_LIMIT_BACKOFF = 10.0
# Salesforce's API request limit is a rolling 24 hours: do not hammer it.
SALESFORCE_LIMIT_BACKOFF = 300.0
# Bounded retries of idempotent requests here; longer waits are left to the caller's schedule.
DEFAULT_GET_ATTEMPTS = 3
DEFAULT_MAX_RETRY_WAIT = 30.0
RETRY_BASE_SECONDS = 0.5


@dataclass(frozen=True)
class Answer:
    """A response the caller should act on (2xx, or a 404 declared absent)."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    method: str
    url: str
    idempotent: bool

    def json(self) -> Any:
        """The body as JSON. A 2xx that is not JSON (a proxy's HTML page) is classified like a
        lost answer: transient for a read, indeterminate for a write."""
        if not self.content:
            return None
        try:
            return json_decode(self.content)
        except ValueError as exc:
            raise TransportError(
                kind=TRANSIENT if self.idempotent else INDETERMINATE,
                status=self.status,
                message=f"the answer is not JSON: {exc}",
                method=self.method,
                url=self.url,
            ) from exc


def _is_dns_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # the cause chain is short; bound it anyway
        if seen is None:
            return False
        if isinstance(seen, socket.gaierror):
            return True
        text = str(seen).lower()
        if (
            "name or service not known" in text
            or "nodename nor servname" in text
            or ("temporary failure in name resolution" in text)
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def exception_classify(exc: httpx.HTTPError, *, idempotent: bool) -> str:
    """The kind of a failure that got no HTTP answer.

    Nothing sent (connect errors, pool timeout) is transient, except an unknown host
    (configuration). Once the request was sent, a lost answer is transient for an idempotent
    request and indeterminate for a write: it may have been applied.
    """
    if isinstance(exc, httpx.ConnectError) and _is_dns_failure(exc):
        return CONFIGURATION
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return TRANSIENT
    if isinstance(
        exc,
        httpx.UnsupportedProtocol
        | httpx.LocalProtocolError
        | httpx.TooManyRedirects
        | httpx.InvalidURL,
    ):
        return CONFIGURATION
    if isinstance(exc, httpx.TransportError | httpx.DecodingError):
        # ReadTimeout, WriteTimeout, ReadError, WriteError, RemoteProtocolError, proxy errors.
        return TRANSIENT if idempotent else INDETERMINATE
    return TRANSIENT if idempotent else INDETERMINATE


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{value} cannot be sent as a JSON number")
        return orjson.Fragment(format(value, "f").encode())
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_encode(value: Any) -> bytes:
    """JSON bytes for a request body; a Decimal becomes a number with exactly its digits
    (never through float)."""
    return orjson.dumps(value, default=_json_default)


# orjson reads an integer beyond 64 bits as a float, silently rounded; json reads it exactly.
# Such a number has 19 digits or more in a row, so only a text with such a run is read by json
# (a long digit string in a text value costs that document the slower reader, nothing else).
# Found by mapping every digit to 0 and looking for 19 zeros (docs/decisions.md #42).
_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def json_decode(data: bytes | str) -> Any:
    """A JSON document as Python values, every number exactly as written (an integer of any
    size stays an int). Raises ValueError (json.JSONDecodeError, or orjson's subclass of it)
    for anything that is not JSON or that orjson refuses: NaN and Infinity, a number beyond a
    double's range, lone surrogates, a byte-order mark, nesting deeper than 1,024."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_TO_ZERO):
        return orjson.loads(data)
    orjson.loads(data)  # what orjson refuses is refused whichever reader reads the numbers
    try:
        return json.loads(data, parse_constant=_not_json)
    except RecursionError as exc:  # orjson allows 1,024 levels, json's recursion fewer
        raise ValueError("the document is nested too deeply") from exc


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA bundle (20-40 ms under load),
    and a connector is built per batch and per delivery run."""
    return httpx.create_ssl_context()


class VendorHttp:
    """An HTTP client for one connection. Thread-safe; reuse it (it pools connections).

    `transport` replaces the network (e.g. `httpx.WSGITransport(app=SandboxApp(...))` or
    `httpx.MockTransport`) for tests; `clock`/`sleep`/`rng` make budgets and backoff testable.
    """

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        auth: Auth | None = None,
        transport: httpx.BaseTransport | None = None,
        rate_limit_backoff: float = DEFAULT_RATE_LIMIT_BACKOFF,
        get_attempts: int = DEFAULT_GET_ATTEMPTS,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        default_headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._label = config.name or config.system  # /metrics' connection label
        self.auth: Auth = auth or NoAuth()
        self.rate_limit_backoff = rate_limit_backoff
        self.get_attempts = max(get_attempts, 1)
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.bucket = (
            TokenBucket(rate=config.rate_per_second, clock=clock, sleep=sleep)
            if config.rate_per_second
            else None
        )
        self.cap = ConcurrencyCap(config.max_concurrency)
        self.api_usage: tuple[int, int] | None = None  # last Sforce-Limit-Info seen
        timeout = httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds)
        self._client = httpx.Client(
            base_url=config.base_url,
            transport=transport,
            verify=_ssl_context(),
            timeout=timeout,
            limits=httpx.Limits(
                max_connections=config.max_concurrency,
                max_keepalive_connections=config.max_concurrency,
            ),
            follow_redirects=False,
            headers={
                "User-Agent": "Ledgerbridge/1.0",
                "Accept": "application/json",
                **(default_headers or {}),
            },
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> VendorHttp:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        not_found: str = CONFIGURATION,
        correlation_id: str | None = None,
        authenticate: bool = True,
        attempts: int | None = None,
    ) -> Answer:
        """Send one request; return its `Answer` or raise a classified `TransportError`.

        `idempotent` defaults to the method's (GET/HEAD/OPTIONS); pass True for a read sent as
        POST (SuiteQL) so that it is retried and a lost answer counts as transient.
        `not_found`: what a 404 is: CONFIGURATION (a wrong base path, the default), PERMANENT
        (the record a write points at does not exist) or ABSENT (return the 404 answer).
        `attempts` overrides the bounded retry count of an idempotent request (1: no retry).
        """
        method = method.upper()
        if json is not None:
            # Encoded here, not by httpx: Decimal amounts go out as exact JSON numbers.
            content = json_encode(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
            json = None
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        correlation = correlation_id or correlation_id_var.get() or uuid.uuid4().hex
        if attempts is None:
            attempts = self.get_attempts if idempotent else 1
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._send_once(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    content=content,
                    headers=headers,
                    idempotent=idempotent,
                    not_found=not_found,
                    correlation=correlation,
                    authenticate=authenticate,
                )
            except TransportError as error:
                if (
                    error.status == 401
                    and authenticate
                    and not refreshed
                    and (self.auth.invalidate())
                ):
                    # An expired token: the request was refused, not applied; retry once.
                    refreshed = True
                    attempt -= 1
                    continue
                wait = self._backoff(attempt, error)
                if error.kind != TRANSIENT or attempt >= attempts or wait > self.max_retry_wait:
                    logger.info("%s %s failed [%s]: %s", method, url, correlation, error)
                    raise
                self._sleep(wait)

    def _backoff(self, attempt: int, error: TransportError) -> float:
        ceiling = RETRY_BASE_SECONDS * 2 ** (attempt - 1)
        return max(self._rng.uniform(0, ceiling), error.retry_after or 0.0)

    def _send_once(
        self,
        method: str,
        url: str,
        *,
        params,
        json,
        data,
        content,
        headers,
        idempotent: bool,
        not_found: str,
        correlation: str,
        authenticate: bool,
    ) -> Answer:
        outgoing = {self.config.correlation_header: correlation, **(headers or {})}
        try:
            request = self._client.build_request(
                method,
                url,
                params=params,
                json=json,
                data=data,
                content=content,
                headers=outgoing,
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise TransportError(
                kind=CONFIGURATION, message=f"bad URL: {exc}", method=method, url=url
            ) from exc
        if authenticate:
            request.headers.update(
                self.auth.headers(method=method, url=str(request.url), http=self)
            )
        if self.bucket is not None:
            self.bucket.acquire()
        with self.cap:
            started = time.perf_counter()
            try:
                response = self._client.send(request)
                try:
                    body = response.read()
                finally:
                    response.close()
            except httpx.HTTPError as exc:
                request_stats.record(
                    connection=self._label,
                    seconds=time.perf_counter() - started,
                    outcome=outcome_of(None, timed_out=isinstance(exc, httpx.TimeoutException)),
                )
                kind = exception_classify(exc, idempotent=idempotent)
                raise TransportError(
                    kind=kind,
                    message=f"{type(exc).__name__}: {exc}",
                    method=method,
                    url=str(request.url),
                ) from exc
            request_stats.record(
                connection=self._label,
                seconds=time.perf_counter() - started,
                outcome=outcome_of(response.status_code),
            )
        usage = limit_info_parse(response.headers.get("sforce-limit-info"))
        if usage is not None:
            self.api_usage = usage
        answer = Answer(
            status=response.status_code,
            headers=response.headers,
            content=body,
            method=method,
            url=str(request.url),
            idempotent=idempotent,
        )
        if 200 <= response.status_code < 300 or (
            response.status_code == 404 and not_found == ABSENT
        ):
            return answer
        raise self._error(answer, not_found=not_found)

    def _error(self, answer: Answer, *, not_found: str) -> TransportError:
        try:
            body = json_decode(answer.content) if answer.content else None
        except ValueError:
            body = None
        vendor_code, message = error_details(body)
        if not message:
            message = answer.content[:300].decode("utf-8", "replace") or f"HTTP {answer.status}"
        should = answer.headers.get("stripe-should-retry")
        kind = failure_classify(
            status=answer.status,
            idempotent=answer.idempotent,
            vendor_code=vendor_code,
            not_found=not_found,
            should_retry=None if should is None else should == "true",
        )
        retry_after = retry_after_parse(answer.headers.get("retry-after"))
        if (
            kind == TRANSIENT
            and retry_after is None
            and (answer.status == 429 or vendor_code in RATE_LIMIT_CODES)
        ):
            retry_after = (
                SALESFORCE_LIMIT_BACKOFF if answer.status == 403 else self.rate_limit_backoff
            )
        if vendor_code == "REQUEST_LIMIT_EXCEEDED" and self.api_usage is not None:
            message = f"{message} (api-usage {self.api_usage[0]}/{self.api_usage[1]})"
        return TransportError(
            kind=kind,
            status=answer.status,
            vendor_code=vendor_code,
            message=message,
            retry_after=retry_after,
            method=answer.method,
            url=answer.url,
        )
