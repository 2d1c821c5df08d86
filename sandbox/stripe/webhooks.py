"""Stripe webhooks: endpoints (`/v1/webhook_endpoints`), signed deliveries with retries, and the
delivery worker.

A delivery POSTs the event JSON with `Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<payload>" keyed by the endpoint's whsec_ secret>` (https://docs.stripe.com/webhooks#verify-
manually). Delivery is at least once: any answer but a 2xx, or a network error, is retried with
exponential backoff (`BASE_BACKOFF` * 2^(attempt-1), capped at `MAX_BACKOFF`) up to
`MAX_ATTEMPTS`; events are not ordered (retries overtake, and a worker can be given a seeded
`random.Random` to shuffle each round, as Stripe gives no ordering guarantee).

`webhook_deliveries_send_due` is the worker (tests call it with a controlled `now`);
`WebhookDispatcher` runs it every second in a daemon thread for `sandbox serve`.
Delivery uses the standard library's http.client: the sandbox needs no HTTP client library.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import logging
import random
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson
from django.db import close_old_connections, transaction

from sandbox.core.protocol import Request, Response
from sandbox.models import SandboxWebhookDelivery, SandboxWebhookSubscription
from sandbox.router import SANDBOX_DB
from sandbox.stripe import clock, forms
from sandbox.stripe.objects import (
    SYSTEM,
    endpoint_render,
    event_render,
    stripe_id,
    stripe_id_parse,
)
from sandbox.stripe.services import EVENT_TYPES, no_such

logger = logging.getLogger("sandbox.stripe")

MAX_ATTEMPTS = 12
BASE_BACKOFF = dt.timedelta(seconds=10)
MAX_BACKOFF = dt.timedelta(hours=1)
CLAIM_LEASE = dt.timedelta(seconds=60)  # a claimed delivery is not picked again meanwhile
DELIVERY_TIMEOUT_SECONDS = 10
MAX_ENDPOINTS = 16


def _digest(secret: str, payload: bytes, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def webhook_signature_header(*, secret: str, payload: bytes, timestamp: int) -> str:
    """The Stripe-Signature header a receiver checks: t=<timestamp>,v1=<hex HMAC-SHA256>."""
    return f"t={timestamp},v1={_digest(secret, payload, timestamp)}"


def webhook_signature_verify(
    *,
    secret: str,
    payload: bytes,
    header: str,
    tolerance_seconds: int | None = 300,
    now: dt.datetime | None = None,
) -> bool:
    """What a receiver does (Stripe's libraries' `construct_event`), for tests and demos."""
    items = [part.strip().split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [value for name, value in items if name == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    timestamp = int(timestamps[0])
    expected = _digest(secret, payload, timestamp)
    valid = any(hmac.compare_digest(expected, value) for name, value in items if name == "v1")
    if tolerance_seconds is not None:
        current = clock.timestamp(now or clock.now())
        valid = valid and abs(current - timestamp) <= tolerance_seconds
    return valid


# -- endpoints (HTTP) --------------------------------------------------------------------------
def _endpoint(endpoint_id: str) -> SandboxWebhookSubscription:
    pk = stripe_id_parse(endpoint_id, "webhook_endpoint")
    sub = (
        SandboxWebhookSubscription.objects.using(SANDBOX_DB).filter(system=SYSTEM, pk=pk).first()
        if pk is not None
        else None
    )
    if sub is None:
        raise no_such("webhook_endpoint", endpoint_id)
    return sub


def _url_clean(params: dict, *, required: bool) -> str | None:
    url = forms.read_str(params, "url", required=required, max_length=2000)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise forms.invalid(f"Invalid URL: {url}", param="url", code="url_invalid")
    return url


def _events_clean(params: dict, *, required: bool) -> list[str] | None:
    events = forms.read_list(params, "enabled_events")
    if events is None:
        if required:
            raise forms.missing("enabled_events")
        return None
    if not events:
        raise forms.invalid("enabled_events must not be empty", param="enabled_events")
    for event_type in events:
        if event_type != "*" and event_type not in EVENT_TYPES:
            raise forms.invalid(
                f"Invalid enabled_events: {event_type} is not an event type this sandbox sends "
                f"(one of *, {', '.join(EVENT_TYPES)})",
                param="enabled_events",
            )
    return events


_ENDPOINT_PARAMS = {"url", "enabled_events", "description", "metadata", "api_version", "expand"}


def endpoint_create(request: Request, params: dict) -> Response:
    forms.params_unknown_check(params, _ENDPOINT_PARAMS | {"connect"})
    url = _url_clean(params, required=True)
    events = _events_clean(params, required=True)
    manager = SandboxWebhookSubscription.objects.using(SANDBOX_DB)
    if manager.filter(system=SYSTEM).count() >= MAX_ENDPOINTS:
        raise forms.invalid(
            f"You have reached the maximum of {MAX_ENDPOINTS} test webhook endpoints.", param="url"
        )
    sub = manager.create(
        system=SYSTEM,
        url=url,
        event_types=events,
        secret="whsec_" + secrets.token_urlsafe(24),
        active=True,
        created_at=clock.now(),
    )
    return Response.json(endpoint_render(sub, secret=True))


def endpoint_get(request: Request, endpoint_id: str) -> Response:
    return Response.json(endpoint_render(_endpoint(endpoint_id), secret=False))


def endpoint_update(request: Request, params: dict, endpoint_id: str) -> Response:
    forms.params_unknown_check(params, _ENDPOINT_PARAMS | {"disabled"})
    sub = _endpoint(endpoint_id)
    url = _url_clean(params, required=False)
    events = _events_clean(params, required=False)
    disabled = forms.read_bool(params, "disabled")
    if url is not None:
        sub.url = url
    if events is not None:
        sub.event_types = events
    if disabled is not None:
        sub.active = not disabled
    sub.save(using=SANDBOX_DB, update_fields=["url", "event_types", "active"])
    return Response.json(endpoint_render(sub, secret=False))


def endpoint_delete(request: Request, endpoint_id: str) -> Response:
    sub = _endpoint(endpoint_id)
    deleted_id = stripe_id("webhook_endpoint", sub.pk)
    sub.delete()
    return Response.json({"id": deleted_id, "object": "webhook_endpoint", "deleted": True})


def endpoints_list(request: Request) -> Response:
    subs = SandboxWebhookSubscription.objects.using(SANDBOX_DB).filter(system=SYSTEM)
    data = [endpoint_render(sub, secret=False) for sub in subs.order_by("-pk")[:100]]
    return Response.json(
        {"object": "list", "data": data, "has_more": False, "url": "/v1/webhook_endpoints"}
    )


# -- delivery ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryRound:
    delivered: int = 0
    failed: int = 0


Sender = Callable[[str, bytes, dict[str, str]], int]


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    """POST with the standard library; returns the status (raises OSError on network errors)."""
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=DELIVERY_TIMEOUT_SECONDS)
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def backoff(attempts: int) -> dt.timedelta:
    return min(BASE_BACKOFF * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


def _claim_due(moment: dt.datetime, limit: int) -> list[SandboxWebhookDelivery]:
    """Due deliveries, each claimed with a conditional UPDATE (so two workers never share one)."""
    manager = SandboxWebhookDelivery.objects.using(SANDBOX_DB)
    due = list(
        manager.filter(
            subscription__system=SYSTEM,
            subscription__active=True,
            delivered_at__isnull=True,
            attempts__lt=MAX_ATTEMPTS,
            next_attempt_at__lte=moment,
        )
        .order_by("next_attempt_at", "pk")
        .values_list("pk", "next_attempt_at")[:limit]
    )
    claimed = []
    for pk, next_attempt_at in due:
        if manager.filter(pk=pk, next_attempt_at=next_attempt_at, delivered_at__isnull=True).update(
            next_attempt_at=moment + CLAIM_LEASE
        ):
            claimed.append(pk)
    return list(manager.select_related("subscription", "event").filter(pk__in=claimed))


def webhook_deliveries_send_due(
    *,
    now: dt.datetime | None = None,
    limit: int = 100,
    send: Sender = http_post,
    rng: random.Random | None = None,
) -> DeliveryRound:
    """Send the Stripe deliveries that are due; a non-2xx or network error is retried later."""
    moment = now or clock.now()
    with transaction.atomic(using=SANDBOX_DB):
        batch = _claim_due(moment, limit)
    if rng is not None:
        rng.shuffle(batch)
    else:
        batch.sort(key=lambda d: (d.event_id, d.pk))
    delivered = failed = 0
    for delivery in batch:
        pending = (
            SandboxWebhookDelivery.objects.using(SANDBOX_DB)
            .filter(event_id=delivery.event_id, delivered_at__isnull=True)
            .count()
        )
        payload = orjson.dumps(event_render(delivery.event, pending_webhooks=pending))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": webhook_signature_header(
                secret=delivery.subscription.secret,
                payload=payload,
                timestamp=clock.timestamp(moment),
            ),
        }
        delivery.attempts += 1
        try:
            status = send(delivery.subscription.url, payload, headers)
            delivery.last_status, delivery.last_error = status, ""
        except (OSError, http.client.HTTPException) as exc:
            status = None
            delivery.last_status, delivery.last_error = None, str(exc)[:500]
        if status is not None and 200 <= status < 300:
            delivery.delivered_at = moment
            delivered += 1
        else:
            delivery.next_attempt_at = moment + backoff(delivery.attempts)
            failed += 1
        delivery.save(
            using=SANDBOX_DB,
            update_fields=[
                "attempts",
                "last_status",
                "last_error",
                "delivered_at",
                "next_attempt_at",
            ],
        )
    return DeliveryRound(delivered=delivered, failed=failed)


class WebhookDispatcher(threading.Thread):
    """Background loop for `sandbox serve`: sends due Stripe deliveries every `interval` s."""

    def __init__(self, *, interval: float = 1.0, seed: int | None = None) -> None:
        super().__init__(name="sandbox-stripe-webhooks", daemon=True)
        self.interval = interval
        self.rng = random.Random(seed) if seed is not None else None
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                webhook_deliveries_send_due(rng=self.rng)
            except Exception:  # the loop must outlive one bad round; the error is logged
                logger.exception("stripe webhook delivery round failed")
            finally:
                close_old_connections()

    def stop(self) -> None:
        self._stop_event.set()


def webhook_dispatcher_start(*, interval: float = 1.0, seed: int | None = None):
    """Start the delivery loop in a daemon thread; call `.stop()` on the result to end it."""
    dispatcher = WebhookDispatcher(interval=interval, seed=seed)
    dispatcher.start()
    return dispatcher
