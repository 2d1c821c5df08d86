"""Kantata approval webhooks: subscriptions, HMAC-signed deliveries with retries, approvals.

- `POST /api/v1/webhook_subscriptions` {"webhook_subscription": {"url", "event_types", "secret"?}}
  stores a subscription (the secret is generated when absent and returned once);
  `GET` lists them, `DELETE /api/v1/webhook_subscriptions/<id>` removes one.
- `time_entries_approve` / `expenses_approve` (services, used by `sandbox simulate` and tests)
  approve records, append "approved" change events and queue one delivery per subscription.
- `webhook_deliveries_send_due` posts due deliveries: body = the event JSON, headers
  `X-Kantata-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` and
  `X-Kantata-Timestamp`. A non-2xx answer or a network error is retried with exponential
  backoff (30 s times 2^attempt) up to MAX_ATTEMPTS. `WebhookDispatcher` runs it in `serve`.

The sandbox must not need an HTTP client library, so delivery uses the standard library's
http.client (loopback receivers in tests and demos).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import logging
import secrets
import threading
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.db import close_old_connections, transaction
from django.utils import timezone

from sync.sandbox import storage
from sync.sandbox.core.params import id_value
from sync.sandbox.core.protocol import Request, Response, SandboxError
from sync.sandbox.kantata.schema import SYSTEM
from sync.sandbox.kantata.views import kantata_time
from sync.sandbox.models import (
    SandboxEvent,
    SandboxWebhookDelivery,
    SandboxWebhookSubscription,
)
from sync.sandbox.router import SANDBOX_DB

logger = logging.getLogger("sync.sandbox.kantata")

EVENT_TYPES = ("time_entry.approved", "expense.approved")
MAX_ATTEMPTS = 6
BASE_BACKOFF_SECONDS = 30
DELIVERY_TIMEOUT_SECONDS = 5


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """What a receiver recomputes to check a delivery: sha256=<hex>."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


# -- subscriptions (HTTP) ----------------------------------------------------------------------
def _subscription_render(sub: SandboxWebhookSubscription, *, secret: bool) -> dict[str, Any]:
    rendered = {
        "id": str(sub.pk),
        "url": sub.url,
        "event_types": sub.event_types,
        "created_at": kantata_time(sub.created_at),
    }
    if secret:
        rendered["secret"] = sub.secret
    return rendered


def subscription_create(request: Request, fmt: str = "") -> Response:
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("webhook_subscription"), dict):
        raise SandboxError(
            400, "argument", "param is missing or the value is empty: webhook_subscription"
        )
    attributes = body["webhook_subscription"]
    unknown = set(attributes) - {"url", "event_types", "secret"}
    if unknown:
        raise SandboxError(
            422, "validation", f"unknown attribute '{sorted(unknown)[0]}' for WebhookSubscription."
        )
    url = attributes.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SandboxError(422, "validation", "Url must be an http(s) URL", fields=["url"])
    event_types = attributes.get("event_types", list(EVENT_TYPES))
    if not isinstance(event_types, list) or not set(event_types) <= set(EVENT_TYPES):
        raise SandboxError(
            422,
            "validation",
            f"Event types must be a list drawn from {', '.join(EVENT_TYPES)}",
            fields=["event_types"],
        )
    secret = attributes.get("secret") or secrets.token_hex(24)
    if not isinstance(secret, str):
        raise SandboxError(422, "validation", "Secret must be a string", fields=["secret"])
    sub = SandboxWebhookSubscription.objects.using(SANDBOX_DB).create(
        system=SYSTEM, url=url, event_types=event_types, secret=secret, created_at=timezone.now()
    )
    return Response.json(_envelope([sub], secret=True))


def subscription_list(request: Request, fmt: str = "") -> Response:
    subs = list(
        SandboxWebhookSubscription.objects.using(SANDBOX_DB)
        .filter(system=SYSTEM, active=True)
        .order_by("pk")
    )
    return Response.json(_envelope(subs, secret=False))


def subscription_delete(request: Request, record_id: str, fmt: str = "") -> Response:
    deleted = (
        SandboxWebhookSubscription.objects.using(SANDBOX_DB)
        .filter(system=SYSTEM, pk=id_value(record_id) or 0, active=True)
        .update(active=False)
    )
    if not deleted:
        raise SandboxError(404, "not_found", f"WebhookSubscription {record_id} not found")
    return Response.empty(204)


def _envelope(subs: list[SandboxWebhookSubscription], *, secret: bool) -> dict[str, Any]:
    return {
        "count": len(subs),
        "results": [{"key": "webhook_subscriptions", "id": str(s.pk)} for s in subs],
        "webhook_subscriptions": {str(s.pk): _subscription_render(s, secret=secret) for s in subs},
        "meta": {"count": len(subs), "page_count": 1, "page_number": 1, "page_size": len(subs)},
    }


# -- approvals (services) ----------------------------------------------------------------------
def _approve(object_type: str, event_type: str, ids: list[int], now: dt.datetime | None) -> int:
    moment = now or timezone.now()
    approved = 0
    with transaction.atomic(using=SANDBOX_DB):
        subs = list(
            SandboxWebhookSubscription.objects.using(SANDBOX_DB).filter(system=SYSTEM, active=True)
        )
        subs = [s for s in subs if event_type in s.event_types]
        records = storage.record_queryset(system=SYSTEM, object_type=object_type).filter(
            pk__in=ids, status="unapproved"
        )
        deliveries = []
        for record in records:
            storage.record_update(
                record=record,
                changes={"approval_status": "approved"},
                status="approved",
                action="approved",
                now=moment,
                event=False,
            )
            event = storage.event_append(
                record=record,
                action="approved",
                now=moment,
                data={"changes": {"approved": True}, "event_type": event_type},
            )
            deliveries.extend(
                SandboxWebhookDelivery(subscription=s, event=event, next_attempt_at=moment)
                for s in subs
            )
            approved += 1
        SandboxWebhookDelivery.objects.using(SANDBOX_DB).bulk_create(deliveries)
    return approved


def time_entries_approve(*, ids: list[int], now: dt.datetime | None = None) -> int:
    """Approve unapproved time entries; returns how many changed. Idempotent."""
    return _approve("time_entries", "time_entry.approved", ids, now)


def expenses_approve(*, ids: list[int], now: dt.datetime | None = None) -> int:
    """Approve unapproved expenses; returns how many changed. Idempotent."""
    return _approve("expenses", "expense.approved", ids, now)


# -- delivery ----------------------------------------------------------------------------------
def _payload(event: SandboxEvent) -> bytes:
    return orjson.dumps(
        {
            "event_id": str(event.pk),
            "event_type": event.data.get("event_type", event.action),
            "subject_type": event.object_type,
            "subject_id": str(event.record_id),
            "occurred_at": kantata_time(event.occurred_at),
        }
    )


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=DELIVERY_TIMEOUT_SECONDS)
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        connection.request("POST", path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def webhook_deliveries_send_due(*, now: dt.datetime | None = None, limit: int = 100) -> int:
    """Send the deliveries that are due; returns how many were delivered (2xx)."""
    moment = now or timezone.now()
    due = list(
        SandboxWebhookDelivery.objects.using(SANDBOX_DB)
        .select_related("subscription", "event")
        .filter(delivered_at__isnull=True, attempts__lt=MAX_ATTEMPTS, next_attempt_at__lte=moment)
        .order_by("next_attempt_at", "pk")[:limit]
    )
    delivered = 0
    for delivery in due:
        body = _payload(delivery.event)
        timestamp = str(int(moment.timestamp()))
        headers = {
            "Content-Type": "application/json",
            "X-Kantata-Timestamp": timestamp,
            "X-Kantata-Signature": webhook_signature(
                secret=delivery.subscription.secret, timestamp=timestamp, body=body
            ),
            "X-Kantata-Delivery": str(delivery.pk),
        }
        delivery.attempts += 1
        try:
            status = _post(delivery.subscription.url, body, headers)
            delivery.last_status, delivery.last_error = status, ""
        except (OSError, http.client.HTTPException) as exc:
            status = None
            delivery.last_status, delivery.last_error = None, str(exc)[:500]
        if status is not None and 200 <= status < 300:
            delivery.delivered_at = moment
            delivered += 1
        else:
            backoff = BASE_BACKOFF_SECONDS * 2 ** (delivery.attempts - 1)
            delivery.next_attempt_at = moment + dt.timedelta(seconds=backoff)
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
    return delivered


class WebhookDispatcher(threading.Thread):
    """Background loop of `serve`: sends due deliveries every `interval` seconds until stopped."""

    def __init__(self, *, interval: float = 1.0) -> None:
        super().__init__(name="sandbox-kantata-webhooks", daemon=True)
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                webhook_deliveries_send_due()
            except Exception:  # the loop must outlive one bad round; the error is logged
                logger.exception("webhook delivery round failed")
            finally:
                close_old_connections()

    def stop(self) -> None:
        self._stop_event.set()
