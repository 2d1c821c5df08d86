"""Authentication per dialect: headers added to each request by `VendorHttp`.

- `BearerAuth`: a static token (Kantata OAuth token, SCIM bearer token).
- `OAuth2ClientCredentials`: RFC 6749 §4.4 client credentials; the token is fetched through the
  same `VendorHttp` (so timeouts and error classes apply), cached until `expires_in` or a 401,
  and shared by threads and by every connector of the process with the same token URL and
  client credentials (a send task builds its connector afresh; it does not fetch a token
  afresh). Salesforce's token answer has no `expires_in`: cached until a 401.
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm
- `StripeKeyAuth`: the secret key as a bearer token, optional `Stripe-Version`.
  https://docs.stripe.com/api/authentication
- `NetSuiteTokenAuth`: token-based authentication (OAuth 1.0a, HMAC-SHA256, realm = account).
  https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_1534941088.html
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from sync.connectors.base import CONFIGURATION, TransportError


class TokenAnswer(Protocol):
    def json(self) -> Any: ...


class TokenRequester(Protocol):
    """What an `Auth` may ask of the transport that calls it (`http.VendorHttp`): one request.
    Typed here rather than imported so that auth.py does not import http.py, which imports it."""

    def request(
        self,
        method: str,
        url: str,
        *,
        data: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        not_found: str = CONFIGURATION,
        authenticate: bool = True,
        attempts: int | None = None,
    ) -> TokenAnswer: ...


class Auth(Protocol):
    def headers(self, *, method: str, url: str, http: TokenRequester) -> dict[str, str]:
        """Headers that authenticate this request (may fetch a token through `http`)."""
        ...

    def invalidate(self) -> bool:
        """Forget a cached credential after a 401; True when a fresh one may succeed."""
        ...


class NoAuth:
    def headers(self, *, method: str, url: str, http: TokenRequester) -> dict[str, str]:
        return {}

    def invalidate(self) -> bool:
        return False


class BearerAuth:
    def __init__(self, token: str) -> None:
        if not token:
            raise TransportError(kind=CONFIGURATION, message="no access token configured")
        self._token = token

    def headers(self, *, method: str, url: str, http: TokenRequester) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> bool:
        return False  # a static token does not get better by asking again


class StripeKeyAuth(BearerAuth):
    def __init__(self, secret_key: str, *, api_version: str | None = None) -> None:
        super().__init__(secret_key)
        self._version = api_version

    def headers(self, *, method: str, url: str, http: TokenRequester) -> dict[str, str]:
        headers = super().headers(method=method, url=url, http=http)
        if self._version:
            headers["Stripe-Version"] = self._version
        return headers


class _SharedTokens:
    """Client-credentials tokens of this process, by token URL and credentials (hashed), on the
    monotonic clock: what one connector fetched, the next one with the same client uses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float | None, dict[str, Any]]] = {}

    @staticmethod
    def key(token_url: str, form: Mapping[str, str]) -> str:
        material = "\0".join([token_url, *(f"{k}={form[k]}" for k in sorted(form))])
        return hashlib.sha256(material.encode()).hexdigest()

    def get(self, key: str) -> tuple[str, float | None, dict[str, Any]] | None:
        with self._lock:
            entry = self._tokens.get(key)
        if entry is not None and entry[1] is not None and time.monotonic() >= entry[1]:
            return None
        return entry

    def put(self, key: str, entry: tuple[str, float | None, dict[str, Any]]) -> None:
        with self._lock:
            self._tokens[key] = entry

    def drop(self, key: str, token: str | None) -> None:
        """Forget the token (refused with a 401), unless another connector has renewed it."""
        with self._lock:
            if token is not None and self._tokens.get(key, ("",))[0] == token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


_shared_tokens = _SharedTokens()


class OAuth2ClientCredentials:
    """Client-credentials token, fetched lazily, cached, refreshed once after a 401.

    On the real (monotonic) clock the token is shared through `_shared_tokens` with the other
    connectors of the process that use the same client; a test's own clock keeps it private.

    Token endpoint failures are CONFIGURATION (bad client id/secret, wrong URL) or TRANSIENT
    (the endpoint is down), as `VendorHttp` classifies them.
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        extra: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (token_url and client_id and client_secret):
            raise TransportError(
                kind=CONFIGURATION, message="token_url, client_id and client_secret are required"
            )
        self.token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            **(extra or {}),
        }
        if scope:
            self._form["scope"] = scope
        self._clock = clock
        self._shared_key = (
            _SharedTokens.key(token_url, self._form) if clock is time.monotonic else None
        )
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: float | None = None
        self.token_answer: dict[str, Any] = {}  # the last token answer (e.g. instance_url)

    def headers(self, *, method: str, url: str, http: TokenRequester) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._current(http)}"}

    def _current(self, http: TokenRequester) -> str:
        with self._lock:
            if self._shared_key:  # the process's token for this client, renewed by any
                shared = _shared_tokens.get(self._shared_key)
                if shared is not None:
                    self._token, self._expires_at, self.token_answer = shared
                    return self._token
            elif self._token is not None and (
                self._expires_at is None or self._clock() < self._expires_at
            ):
                return self._token
            # One attempt: the request that needs the token owns the retries (no nesting).
            answer = http.request(
                "POST",
                self.token_url,
                data=self._form,
                authenticate=False,
                idempotent=True,
                not_found=CONFIGURATION,
                attempts=1,
            ).json()
            token = answer.get("access_token") if isinstance(answer, dict) else None
            if not token:
                raise TransportError(
                    kind=CONFIGURATION,
                    status=200,
                    message="the token endpoint answered without access_token",
                )
            expires_in = answer.get("expires_in")
            # Renew a minute early so that a token never expires between check and use.
            self._expires_at = (
                self._clock() + max(float(expires_in) - 60.0, 1.0) if expires_in else None
            )
            self._token = str(token)
            self.token_answer = answer
            if self._shared_key:
                _shared_tokens.put(self._shared_key, (self._token, self._expires_at, answer))
            return self._token

    def invalidate(self) -> bool:
        with self._lock:
            had_token = self._token is not None
            if self._shared_key:
                _shared_tokens.drop(self._shared_key, self._token)
            self._token = None
            self._expires_at = None
            return had_token


def _pct(value: str) -> str:
    return quote(value, safe="~-._")


class NetSuiteTokenAuth:
    """NetSuite token-based authentication: an OAuth 1.0a signature per request (HMAC-SHA256).

    `nonce` and `timestamp` are injectable for tests; real calls use fresh ones.
    """

    def __init__(
        self,
        *,
        account: str,
        consumer_key: str,
        consumer_secret: str,
        token_id: str,
        token_secret: str,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
        timestamp: Callable[[], int] = lambda: int(time.time()),
    ) -> None:
        if not all((account, consumer_key, consumer_secret, token_id, token_secret)):
            raise TransportError(kind=CONFIGURATION, message="incomplete NetSuite TBA credentials")
        # The realm is the account id upper-cased with "-" as "_" (sandbox accounts: 123_SB1).
        self.realm = account.upper().replace("-", "_")
        self._consumer = (consumer_key, consumer_secret)
        self._token = (token_id, token_secret)
        self._nonce = nonce
        self._timestamp = timestamp

    def headers(self, *, method: str, url: str, http: TokenRequester) -> dict[str, str]:
        oauth = {
            "oauth_consumer_key": self._consumer[0],
            "oauth_token": self._token[0],
            "oauth_signature_method": "HMAC-SHA256",
            "oauth_timestamp": str(self._timestamp()),
            "oauth_nonce": self._nonce(),
            "oauth_version": "1.0",
        }
        parts = urlsplit(url)
        base_url = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, "", ""))
        params = [*parse_qsl(parts.query, keep_blank_values=True), *oauth.items()]
        normalized = "&".join(f"{k}={v}" for k, v in sorted((_pct(k), _pct(v)) for k, v in params))
        base_string = "&".join((method.upper(), _pct(base_url), _pct(normalized)))
        key = f"{_pct(self._consumer[1])}&{_pct(self._token[1])}"
        digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()
        oauth["oauth_signature"] = base64.b64encode(digest).decode()
        fields = ", ".join(f'{k}="{_pct(v)}"' for k, v in oauth.items())
        return {"Authorization": f'OAuth realm="{self.realm}", {fields}'}

    def invalidate(self) -> bool:
        return False
