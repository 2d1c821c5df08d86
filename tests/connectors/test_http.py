"""VendorHttp: error answers, Retry-After honoured, budgets, retries, correlation, auth."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import orjson
import pytest

from sync.connectors.auth import OAuth2ClientCredentials
from sync.connectors.base import (
    CONFIGURATION,
    INDETERMINATE,
    PERMANENT,
    TRANSIENT,
    TransportError,
    correlation_scope,
)
from sync.connectors.failures import ABSENT
from sync.connectors.http import DEFAULT_RATE_LIMIT_BACKOFF, SALESFORCE_LIMIT_BACKOFF, VendorHttp

from .conftest import FakeVendor, SleepRecorder, mock_config


def json_answer(status: int, body=None, headers=None) -> httpx.Response:
    return httpx.Response(
        status,
        content=orjson.dumps(body) if body is not None else b"",
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def client(vendor: FakeVendor, **options) -> VendorHttp:
    options.setdefault("sleep", SleepRecorder())
    config_options = options.pop("config", {})
    return VendorHttp(mock_config(**config_options), transport=vendor.transport, **options)


def failure_of(http: VendorHttp, method: str, **kwargs) -> TransportError:
    with pytest.raises(TransportError) as caught:
        http.request(method, "records", **kwargs)
    return caught.value


SF_LIMIT = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
NS_USER_ERROR = {
    "type": "x",
    "title": "Bad Request",
    "status": 400,
    "o:errorDetails": [
        {
            "detail": "Please enter value(s) for: Subsidiary",
            "o:errorCode": "USER_ERROR",
            "o:errorPath": "subsidiary",
        }
    ],
}

STATUS_TABLE = [
    # method, status, body, expected kind, expected vendor code
    ("GET", 500, None, TRANSIENT, ""),
    ("POST", 500, None, TRANSIENT, ""),
    ("GET", 503, None, TRANSIENT, ""),
    ("PATCH", 503, None, TRANSIENT, ""),
    ("POST", 502, None, INDETERMINATE, ""),
    ("PUT", 504, None, INDETERMINATE, ""),
    ("GET", 504, None, TRANSIENT, ""),
    (
        "GET",
        429,
        {"errors": [{"type": "rate_limit", "message": "slow down"}]},
        TRANSIENT,
        "rate_limit",
    ),
    (
        "POST",
        429,
        {"error": {"type": "rate_limit_error", "message": "Too many"}},
        TRANSIENT,
        "rate_limit_error",
    ),
    ("GET", 403, SF_LIMIT, TRANSIENT, "REQUEST_LIMIT_EXCEEDED"),
    (
        "POST",
        429,
        {
            "title": "Too Many Requests",
            "o:errorDetails": [
                {
                    "detail": "Concurrent request limit exceeded.",
                    "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED",
                }
            ],
        },
        TRANSIENT,
        "CONCURRENCY_LIMIT_EXCEEDED",
    ),
    (
        "POST",
        402,
        {"error": {"type": "card_error", "code": "card_declined", "message": "no"}},
        PERMANENT,
        "card_declined",
    ),
    (
        "GET",
        401,
        [{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}],
        CONFIGURATION,
        "INVALID_SESSION_ID",
    ),
    (
        "PATCH",
        403,
        [{"errorCode": "INSUFFICIENT_ACCESS", "message": "no"}],
        CONFIGURATION,
        "INSUFFICIENT_ACCESS",
    ),
    ("GET", 404, None, CONFIGURATION, ""),
    ("POST", 405, None, CONFIGURATION, ""),
    ("GET", 301, None, CONFIGURATION, ""),
    (
        "GET",
        400,
        [{"errorCode": "INVALID_FIELD", "message": "No such column"}],
        CONFIGURATION,
        "INVALID_FIELD",
    ),
    (
        "GET",
        400,
        {"schemas": [], "scimType": "invalidFilter", "detail": "bad"},
        CONFIGURATION,
        "invalidFilter",
    ),
    (
        "POST",
        400,
        {"error": "invalid_client", "error_description": "bad secret"},
        CONFIGURATION,
        "invalid_client",
    ),
    ("PUT", 400, NS_USER_ERROR, PERMANENT, "USER_ERROR"),
    (
        "POST",
        422,
        {"errors": [{"type": "validation", "message": "Title can't be blank", "field": "title"}]},
        PERMANENT,
        "validation",
    ),
    (
        "PATCH",
        300,
        [{"errorCode": "MULTIPLE_CHOICES", "message": "two"}],
        PERMANENT,
        "MULTIPLE_CHOICES",
    ),
    (
        "GET",
        410,
        {"errors": [{"type": "cursor_expired", "message": "expired"}]},
        PERMANENT,
        "cursor_expired",
    ),
    (
        "POST",
        400,
        {"error": {"type": "idempotency_error", "message": "other params"}},
        PERMANENT,
        "idempotency_error",
    ),
    (
        "POST",
        409,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "idempotency_key_in_use",
                "message": "in use",
            }
        },
        TRANSIENT,
        "idempotency_key_in_use",
    ),
    ("POST", 408, None, TRANSIENT, ""),
]


@pytest.mark.parametrize(("method", "status", "body", "kind", "vendor_code"), STATUS_TABLE)
def test_each_error_answer_is_classified_once_by_status_method_and_vendor_code(
    method, status, body, kind, vendor_code
):
    vendor = FakeVendor(json_answer(status, body))
    error = failure_of(client(vendor, get_attempts=1), method)
    assert (error.kind, error.status, error.vendor_code) == (kind, status, vendor_code)


def _dns_failure() -> httpx.ConnectError:
    error = httpx.ConnectError("[Errno -2] Name or service not known")
    error.__cause__ = socket.gaierror(-2, "Name or service not known")
    return error


EXCEPTION_TABLE = [
    # exception, method, idempotent override, expected kind
    (httpx.ConnectError("connection refused"), "GET", None, TRANSIENT),
    (httpx.ConnectError("connection refused"), "POST", None, TRANSIENT),
    (_dns_failure(), "GET", None, CONFIGURATION),
    (_dns_failure(), "POST", None, CONFIGURATION),
    (httpx.ConnectTimeout("connect timed out"), "POST", None, TRANSIENT),
    (httpx.PoolTimeout("no connection free"), "PATCH", None, TRANSIENT),
    (httpx.ReadTimeout("read timed out"), "GET", None, TRANSIENT),
    (httpx.ReadTimeout("read timed out"), "POST", None, INDETERMINATE),
    (httpx.ReadTimeout("read timed out"), "PUT", None, INDETERMINATE),
    (httpx.ReadTimeout("read timed out"), "PATCH", None, INDETERMINATE),
    (httpx.ReadTimeout("read timed out"), "POST", True, TRANSIENT),  # SuiteQL: a read by POST
    (httpx.WriteTimeout("write timed out"), "POST", None, INDETERMINATE),
    (httpx.RemoteProtocolError("peer closed connection"), "GET", None, TRANSIENT),
    (httpx.RemoteProtocolError("peer closed connection"), "POST", None, INDETERMINATE),
    (httpx.ReadError("connection reset by peer"), "PATCH", None, INDETERMINATE),
    (httpx.ReadError("connection reset by peer"), "DELETE", None, INDETERMINATE),
    (httpx.UnsupportedProtocol("no such scheme"), "GET", None, CONFIGURATION),
]


@pytest.mark.parametrize(("exception", "method", "idempotent", "kind"), EXCEPTION_TABLE)
def test_each_failure_without_an_answer_is_classified_by_whether_a_write_was_sent(
    exception, method, idempotent, kind
):
    vendor = FakeVendor(exception)
    error = failure_of(client(vendor, get_attempts=1), method, idempotent=idempotent)
    assert error.kind == kind
    assert error.status is None
    assert isinstance(error.__cause__, httpx.HTTPError)


def test_a_404_declared_absent_is_an_answer_not_an_error():
    vendor = FakeVendor(json_answer(404, {"o:errorDetails": [{"o:errorCode": "NONEXISTENT_ID"}]}))
    answer = client(vendor).request("GET", "records/eid:X", not_found=ABSENT)
    assert answer.status == 404


def test_a_404_on_a_write_target_can_be_declared_permanent():
    vendor = FakeVendor(json_answer(404, {"errors": [{"type": "not_found", "message": "gone"}]}))
    error = failure_of(client(vendor), "PUT", not_found=PERMANENT)
    assert error.kind == PERMANENT


def test_a_429_carries_the_vendors_retry_after_to_the_caller():
    vendor = FakeVendor(json_answer(429, {}, {"Retry-After": "17"}))
    error = failure_of(client(vendor), "POST")
    assert (error.kind, error.retry_after) == (TRANSIENT, 17.0)


def test_a_429_without_retry_after_gets_the_default_backoff_as_kantata_sends_none():
    vendor = FakeVendor(json_answer(429, {"errors": [{"type": "rate_limit", "message": "x"}]}))
    error = failure_of(client(vendor), "POST")
    assert error.retry_after == DEFAULT_RATE_LIMIT_BACKOFF


def test_salesforces_request_limit_is_transient_with_a_long_backoff_and_the_usage_noted():
    vendor = FakeVendor(json_answer(403, SF_LIMIT, {"Sforce-Limit-Info": "api-usage=500/500"}))
    http = client(vendor, get_attempts=1)
    error = failure_of(http, "GET")
    assert (error.kind, error.retry_after) == (TRANSIENT, SALESFORCE_LIMIT_BACKOFF)
    assert http.api_usage == (500, 500)
    assert "500/500" in error.message


def test_a_transient_get_is_retried_a_bounded_number_of_times_and_then_succeeds():
    vendor = FakeVendor(json_answer(503), json_answer(503), json_answer(200, {"ok": True}))
    sleeps = SleepRecorder()
    answer = client(vendor, sleep=sleeps, get_attempts=3).request("GET", "records")
    assert answer.json() == {"ok": True}
    assert len(vendor.requests) == 3
    assert len(sleeps.calls) == 2


def test_a_transient_get_gives_up_after_its_attempts():
    vendor = FakeVendor(json_answer(500))
    error = failure_of(client(vendor, get_attempts=3), "GET")
    assert error.kind == TRANSIENT
    assert len(vendor.requests) == 3


def test_a_write_is_never_retried_by_the_http_layer():
    vendor = FakeVendor(json_answer(503), json_answer(201, {"id": "1"}))
    error = failure_of(client(vendor, get_attempts=5), "POST")
    assert error.kind == TRANSIENT
    assert len(vendor.requests) == 1


def test_a_permanent_failure_of_a_get_is_not_retried():
    vendor = FakeVendor(json_answer(400, {"errors": [{"type": "argument", "message": "bad"}]}))
    failure_of(client(vendor, get_attempts=5), "GET")
    assert len(vendor.requests) == 1


def test_a_retry_after_longer_than_the_retry_budget_is_left_to_the_caller():
    vendor = FakeVendor(json_answer(429, {}, {"Retry-After": "3600"}))
    sleeps = SleepRecorder()
    error = failure_of(client(vendor, sleep=sleeps, get_attempts=5), "GET")
    assert error.retry_after == 3600.0
    assert len(vendor.requests) == 1
    assert sleeps.calls == []


def test_a_retried_get_waits_at_least_the_retry_after_asked_for():
    vendor = FakeVendor(json_answer(429, {}, {"Retry-After": "7"}), json_answer(200, {}))
    sleeps = SleepRecorder()
    client(vendor, sleep=sleeps).request("GET", "records")
    assert len(sleeps.calls) == 1
    assert sleeps.calls[0] >= 7.0


def test_every_request_carries_the_correlation_id_of_its_scope():
    vendor = FakeVendor(json_answer(200, {}))
    http = client(vendor)
    with correlation_scope("deal-42"):
        http.request("GET", "a")
        http.request("POST", "b", json={})
    http.request("GET", "c", correlation_id="given-7")
    http.request("GET", "d")
    ids = [r.headers.get("X-Correlation-ID") for r in vendor.requests]
    assert ids[:3] == ["deal-42", "deal-42", "given-7"]
    assert ids[3]  # none in scope: a fresh one, never missing


def test_a_non_json_success_body_is_transient_for_a_read_and_indeterminate_for_a_write():
    vendor = FakeVendor(httpx.Response(200, content=b"<html>proxy</html>"))
    http = client(vendor)
    with pytest.raises(TransportError) as read:
        http.request("GET", "a").json()
    with pytest.raises(TransportError) as write:
        http.request("POST", "a").json()
    assert (read.value.kind, write.value.kind) == (TRANSIENT, INDETERMINATE)


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "7", "units": 123456789012345678901234567890}',
        b'{"id": "7", "units": -9223372036854775809, "note": "1234567890123456789"}',
        b'{"id": "7", "units": 18446744073709551615}',
    ],
)
def test_an_integer_of_any_size_is_read_exactly_as_the_vendor_wrote_it(body):
    vendor = FakeVendor(httpx.Response(200, content=body))
    read = client(vendor).request("GET", "a").json()
    written = int(body.split(b'"units": ')[1].split(b"}")[0].split(b",")[0])
    assert read["units"] == written
    assert type(read["units"]) is int


BIG = b"12345678901234567890123"  # a 19-digit run: the exact reader reads the document


@pytest.mark.parametrize(
    "body",
    [
        *(
            b'{"units": ' + value + b', "big": ' + BIG + b"}"
            for value in (
                b"NaN",
                b"Infinity",
                b"-Infinity",
                b"1e400",
                b'"\\ud800"',
                b"[" * 1000 + b"1" + b"]" * 1000,
            )
        ),
        b"\xef\xbb\xbf" + b'{"big": ' + BIG + b"}",  # a byte-order mark
    ],
)
def test_the_exact_reader_refuses_what_orjson_refuses_and_raises_nothing_else(body):
    # What it let through PostgreSQL's jsonb would refuse, and a RecursionError would escape
    # the caller: both would fail a pulled page on every retry.
    vendor = FakeVendor(httpx.Response(200, content=body))
    with pytest.raises(TransportError, match="not JSON"):
        client(vendor).request("GET", "a").json()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_rate_limiter_never_lets_more_requests_through_than_its_budget():
    clock = FakeClock()
    stamps: list[float] = []

    def answer(request):
        stamps.append(clock.now)
        return json_answer(200, {})

    vendor = FakeVendor(answer)
    http = client(vendor, config={"rate_per_second": 5}, clock=clock, sleep=clock.sleep)
    for _ in range(60):
        http.request("GET", "records")
    assert len(stamps) == 60
    # A bucket of 5 tokens refilled at 5/s: any window of T seconds holds at most 5 + 5T.
    for i, start in enumerate(stamps):
        in_window = sum(1 for t in stamps[i:] if t < start + 1.0)
        assert in_window <= 10
    assert stamps[-1] >= (60 - 5) / 5 - 1e-9


def test_the_concurrency_cap_keeps_requests_in_flight_within_the_limit():
    lock = threading.Lock()
    in_flight = 0
    peak = 0
    release = threading.Event()

    def answer(request):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        release.wait(timeout=5)
        with lock:
            in_flight -= 1
        return json_answer(200, {})

    vendor = FakeVendor(answer)
    http = client(vendor, config={"max_concurrency": 3})
    threads = [threading.Thread(target=http.request, args=("GET", "x")) for _ in range(10)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and in_flight < 3:
        time.sleep(0.01)
    time.sleep(0.05)  # give a fourth request the chance to slip through if the cap leaked
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(vendor.requests) == 10
    assert peak == 3


def test_an_oauth_token_is_fetched_once_cached_and_refreshed_once_after_a_401():
    tokens = iter(["tok-1", "tok-2"])
    seen: list[str | None] = []

    def answer(request):
        if request.url.path.endswith("/token"):
            assert b"grant_type=client_credentials" in request.content
            return json_answer(200, {"access_token": next(tokens), "token_type": "Bearer"})
        seen.append(request.headers.get("Authorization"))
        if len(seen) == 3:
            return json_answer(401, [{"errorCode": "INVALID_SESSION_ID", "message": "expired"}])
        return json_answer(200, {})

    vendor = FakeVendor(answer)
    auth = OAuth2ClientCredentials(
        token_url="https://vendor.example/api/token", client_id="id", client_secret="secret"
    )
    http = client(vendor, auth=auth)
    for _ in range(3):
        http.request("GET", "records")
    assert seen == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]


def test_connectors_of_one_client_share_its_token_and_a_401_renews_it_for_all():
    """A send task builds its connector afresh: it must not fetch a token afresh."""
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    fetched, seen = [], []

    def answer(request):
        if request.url.path.endswith("/token"):
            fetched.append(1)
            return json_answer(200, {"access_token": next(tokens), "expires_in": 3600})
        seen.append(request.headers.get("Authorization"))
        if len(seen) == 3:
            return json_answer(401, [{"errorCode": "INVALID_SESSION_ID", "message": "expired"}])
        return json_answer(200, {})

    def connector_http():
        auth = OAuth2ClientCredentials(
            token_url="https://vendor.example/api/token", client_id="id", client_secret="secret"
        )
        return client(FakeVendor(answer), auth=auth)

    first, second = connector_http(), connector_http()
    first.request("GET", "records")
    second.request("GET", "records")
    assert len(fetched) == 1
    second.request("GET", "records")  # refused: the second fetches tok-2, for both
    first.request("GET", "records")
    assert len(fetched) == 2
    assert seen == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-1", "Bearer tok-2", "Bearer tok-2"]
    other = OAuth2ClientCredentials(
        token_url="https://vendor.example/api/token", client_id="id", client_secret="another secret"
    )
    client(FakeVendor(answer), auth=other).request("GET", "records")
    assert len(fetched) == 3  # another client's credentials never reuse that token


def test_a_refused_client_secret_is_a_configuration_failure():
    vendor = FakeVendor(json_answer(400, {"error": "invalid_client", "error_description": "no"}))
    auth = OAuth2ClientCredentials(
        token_url="https://vendor.example/api/token", client_id="id", client_secret="wrong"
    )
    error = failure_of(client(vendor, auth=auth), "GET")
    assert (error.kind, error.vendor_code) == (CONFIGURATION, "invalid_client")
