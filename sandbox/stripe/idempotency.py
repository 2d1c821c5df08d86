"""Stripe's `Idempotency-Key`, as documented (https://docs.stripe.com/api/idempotent_requests):

- the status and body of the first request with a key are saved once the endpoint starts to
  execute, errors included, and replayed for a retry with `Idempotent-Replayed: true`;
- a request that never executed is not saved (the 429/5xx the core answers before the handler,
  a handler crash whose writes rolled back, a 429/5xx answer), so its retry runs afresh;
- the same key with other parameters (or another endpoint) is a 400 `idempotency_error`;
- while the first request is still running, another with its key gets a 409
  (`idempotency_key_in_use`); keys are pruned 24 hours after their first use;
- keys are for POST; on GET and DELETE they have no effect.

How: the key row is claimed first in its own committed transaction (status 0 = in flight) so
that a concurrent request can see it; the handler's writes and the saved response then commit
together, so a replay never sees a response without its writes. A claim left in flight by a
crashed process is taken over after `IN_FLIGHT_TIMEOUT`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from functools import wraps

import orjson
from django.db import IntegrityError, transaction

from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.models import SandboxIdempotencyKey
from sandbox.router import SANDBOX_DB
from sandbox.stripe import clock
from sandbox.stripe.objects import SYSTEM

KEY_RETENTION = dt.timedelta(hours=24)
IN_FLIGHT_TIMEOUT = dt.timedelta(seconds=60)
MAX_KEY_LENGTH = 255
IN_FLIGHT = 0


def request_fingerprint(request: Request, params: dict) -> str:
    """Same endpoint and same parameters (order of form fields does not matter)."""
    canonical = orjson.dumps(
        {"method": request.method, "path": request.path, "params": params},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(canonical).hexdigest()


def keys_prune(*, now: dt.datetime | None = None) -> int:
    """Delete keys older than 24 h. Returns how many."""
    moment = now or clock.now()
    deleted, _ = (
        SandboxIdempotencyKey.objects.using(SANDBOX_DB)
        .filter(system=SYSTEM, created_at__lt=moment - KEY_RETENTION)
        .delete()
    )
    return deleted


def _error(status: int, code: str, message: str) -> SandboxError:
    return SandboxError(status, code, message, extra={"type": "idempotency_error"})


def _claim(key: str, fingerprint: str, now: dt.datetime) -> SandboxIdempotencyKey | Response:
    """Our claim on the key, or the response to give instead (a replay); raises 400/409."""
    manager = SandboxIdempotencyKey.objects.using(SANDBOX_DB)
    for _attempt in range(3):
        try:
            with transaction.atomic(using=SANDBOX_DB):
                return manager.create(
                    system=SYSTEM,
                    key=key,
                    request_fingerprint=fingerprint,
                    status_code=IN_FLIGHT,
                    response_headers={},
                    response_body=b"",
                    created_at=now,
                )
        except IntegrityError:
            pass
        existing = manager.filter(system=SYSTEM, key=key).first()
        if existing is None:
            continue  # pruned or released in between: claim again
        if existing.request_fingerprint != fingerprint:
            raise _error(
                400,
                "",
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
            )
        if existing.status_code != IN_FLIGHT:
            headers = {
                k: v for k, v in existing.response_headers.items() if k.lower() != "request-id"
            }
            headers.update({"Idempotent-Replayed": "true", "Idempotency-Key": key})
            original = existing.response_headers.get("Request-Id")
            if original:
                headers["Original-Request"] = original
            return Response(
                status=existing.status_code, body=bytes(existing.response_body), headers=headers
            )
        if existing.created_at >= now - IN_FLIGHT_TIMEOUT:
            raise _error(
                409,
                "idempotency_key_in_use",
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                "going through). Please try again later.",
            )
        # Abandoned by a process that died mid-request: take it over.
        taken = manager.filter(
            pk=existing.pk, status_code=IN_FLIGHT, created_at=existing.created_at
        ).update(created_at=now)
        if taken:
            existing.created_at = now
            return existing
    raise _error(409, "idempotency_key_in_use", "The idempotency key is busy; try again.")


def _release(claim: SandboxIdempotencyKey) -> None:
    SandboxIdempotencyKey.objects.using(SANDBOX_DB).filter(
        pk=claim.pk, status_code=IN_FLIGHT
    ).delete()


def idempotent(
    handler: Callable[..., Response],
    *,
    params_of: Callable[[Request], dict],
    render_error: Callable[[Request, SandboxError], Response],
) -> Callable[..., Response]:
    """Wrap a POST handler with Stripe's idempotency-key semantics."""

    @wraps(handler)
    def wrapper(request: Request, **route_params: str) -> Response:
        key = request.header("idempotency-key")
        if key is None or request.method != "POST":
            return handler(request, **route_params)
        if not key or len(key) > MAX_KEY_LENGTH:
            raise SandboxError(
                400,
                "",
                f"Keys for idempotent requests can only be {MAX_KEY_LENGTH} characters long "
                "and must not be empty.",
                fields=["Idempotency-Key"],
            )
        now = clock.now()
        keys_prune(now=now)
        claimed = _claim(key, request_fingerprint(request, params_of(request)), now)
        if isinstance(claimed, Response):
            return claimed
        request.state["idempotency_key"] = key
        try:
            with transaction.atomic(using=SANDBOX_DB):
                try:
                    with transaction.atomic(using=SANDBOX_DB):
                        response = handler(request, **route_params)
                except SandboxError as exc:
                    response = render_error(request, exc)
                    response.headers.update(exc.headers)
                    if exc.extra.get("validation"):
                        # Refused before the endpoint began to execute: Stripe saves nothing.
                        _release(claimed)
                        return response
                if response.status == 429 or response.status >= 500:
                    _release(claimed)
                    return response
                response.headers["Idempotency-Key"] = key
                response.headers.setdefault("Request-Id", request.state.get("request_id", ""))
                claimed.status_code = response.status
                claimed.response_headers = dict(response.headers)
                claimed.response_body = response.body
                claimed.save(
                    using=SANDBOX_DB,
                    update_fields=["status_code", "response_headers", "response_body"],
                )
                return response
        except BaseException:
            _release(claimed)
            raise

    return wrapper
