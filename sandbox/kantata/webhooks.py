"""Kantata approval webhooks: subscriptions, HMAC-signed deliveries with retries, approvals.

- `POST /api/v1/webhook_subscriptions` {"webhook_subscription": {"url", "event_types", "secret"?}}
  stores a subscription (the secret is generated when absent and returned once);
  `GET` lists them, `DELETE /api/v1/webhook_subscriptions/<id>` removes one.
- `time_entries_approve` / `expenses_approve` (services, used by `sandbox simulate` and tests)
  approve records, append "approved" change events and queue one delivery per subscription.
- `webhook_deliveries_send_due` posts due deliveries: body = the event JSON, headers
  `X-Kantata-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` and
  `X-Kantata-Timestamp`, up to DELIVERY_CONCURRENCY in flight. A non-2xx answer or a network
  error is retried with exponential backoff (30 s times 2^attempt) up to MAX_ATTEMPTS.
  `WebhookDispatcher` runs it in `serve`.
- The dispatcher wakes as soon as an approval commits, not on its next poll: an approval in
  the same process sets an event; on PostgreSQL it also sends `NOTIFY sandbox_kantata_webhooks`
  (delivered at commit), which the dispatcher LISTENs for, so approvals made by another process
  (`sandbox simulate`, a benchmark) wake it too. Polling every `interval` seconds stays as the
  fallback (SQLite across processes, retries coming due).

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
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.db import DatabaseError, close_old_connections, connections, transaction
from django.utils import timezone

from sandbox import storage
from sandbox.core.params import id_value
from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.kantata.schema import SYSTEM
from sandbox.kantata.views import kantata_time
from sandbox.models import (
    SandboxEvent,
    SandboxWebhookDelivery,
    SandboxWebhookSubscription,
)
from sandbox.router import SANDBOX_DB

logger = logging.getLogger("sandbox.kantata")

EVENT_TYPES = ("time_entry.approved", "expense.approved")
MAX_ATTEMPTS = 6
BASE_BACKOFF_SECONDS = 30
DELIVERY_TIMEOUT_SECONDS = 5
SEND_BATCH = 100
DELIVERY_CONCURRENCY = 8  # POSTs in flight at once, as a vendor's sender runs several
WAKE_CHANNEL = "sandbox_kantata_webhooks"
# Set when deliveries are queued in this process (and by the NOTIFY listener for the others).
_wake = threading.Event()


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
        if deliveries:
            _deliveries_announce()
    return approved


def _deliveries_announce() -> None:
    """Wake the dispatcher once the current sandbox transaction commits (see the docstring)."""
    connection = connections[SANDBOX_DB]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # NOTIFY is transactional: sent at commit
            cursor.execute("SELECT pg_notify(%s, '')", [WAKE_CHANNEL])
    transaction.on_commit(_wake.set, using=SANDBOX_DB)


def time_entries_approve(*, ids: list[int], now: dt.datetime | None = None) -> int:
    """Approve unapproved time entries; returns how many changed. Idempotent."""
    return _approve("time_entries", "time_entry.approved", ids, now)


def expenses_approve(*, ids: list[int], now: dt.datetime | None = None) -> int:
    """Approve unapproved expenses; returns how many changed. Idempotent."""
    return _approve("expenses", "expense.approved", ids, now)


# -- delivery ----------------------------------------------------------------------------------
def webhook_event_body(event: SandboxEvent) -> bytes:
    """The JSON body a delivery of `event` carries (what a receiver verifies and stores)."""
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


def _attempt(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """One POST: (status, "") or (None, the network error). No database work: runs in threads."""
    try:
        return _post(url, body, headers), ""
    except (OSError, http.client.HTTPException) as exc:
        return None, str(exc)[:500]


def webhook_deliveries_send_due(
    *,
    now: dt.datetime | None = None,
    limit: int = SEND_BATCH,
    concurrency: int = DELIVERY_CONCURRENCY,
) -> int:
    """Send the deliveries that are due, up to `concurrency` POSTs in flight (senders deliver
    in parallel and in no promised order); returns how many were delivered (2xx)."""
    moment = now or timezone.now()
    due = list(
        SandboxWebhookDelivery.objects.using(SANDBOX_DB)
        .select_related("subscription", "event")
        .filter(delivered_at__isnull=True, attempts__lt=MAX_ATTEMPTS, next_attempt_at__lte=moment)
        .order_by("next_attempt_at", "pk")[:limit]
    )
    timestamp = str(int(moment.timestamp()))
    requests = []
    for delivery in due:
        body = webhook_event_body(delivery.event)
        headers = {
            "Content-Type": "application/json",
            "X-Kantata-Timestamp": timestamp,
            "X-Kantata-Signature": webhook_signature(
                secret=delivery.subscription.secret, timestamp=timestamp, body=body
            ),
            "X-Kantata-Delivery": str(delivery.pk),
        }
        requests.append((delivery.subscription.url, body, headers))
    if len(requests) > 1 and concurrency > 1:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(requests))) as pool:
            outcomes = list(pool.map(lambda r: _attempt(*r), requests))
    else:
        outcomes = [_attempt(*r) for r in requests]
    delivered = 0
    for delivery, (status, error) in zip(due, outcomes, strict=True):
        delivery.attempts += 1
        delivery.last_status, delivery.last_error = status, error
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
    """Background loop of `serve`: sends due deliveries as soon as an approval queues them, and
    every `interval` seconds in any case (retries coming due), until stopped."""

    def __init__(self, *, interval: float = 1.0) -> None:
        super().__init__(name="sandbox-kantata-webhooks", daemon=True)
        self.interval = interval
        self._stop_event = threading.Event()
        self._listener: _NotifyListener | None = None

    def run(self) -> None:
        if connections[SANDBOX_DB].vendor == "postgresql":
            self._listener = _NotifyListener(stop=self._stop_event)
            self._listener.start()
        while not self._stop_event.is_set():
            _wake.wait(self.interval)
            # Cleared before the query: an approval committed after it wakes the next round.
            _wake.clear()
            if self._stop_event.is_set():
                break
            try:
                while webhook_deliveries_send_due() >= SEND_BATCH:
                    pass  # a full batch: more may be due at once
            except Exception:  # the loop must outlive one bad round; the error is logged
                logger.exception("webhook delivery round failed")
            finally:
                close_old_connections()
        if self._listener is not None:
            self._listener.join(timeout=2 * _NotifyListener.POLL_SECONDS + 1)
        connections[SANDBOX_DB].close()

    def stop(self) -> None:
        self._stop_event.set()
        _wake.set()


class _NotifyListener(threading.Thread):
    """LISTENs on the sandbox's PostgreSQL for approvals committed by any process and wakes the
    dispatcher; reconnects after a database error."""

    POLL_SECONDS = 1.0  # how often it checks whether to stop

    def __init__(self, *, stop: threading.Event) -> None:
        super().__init__(name="sandbox-kantata-webhooks-listen", daemon=True)
        self._stop_event = stop

    def run(self) -> None:
        import psycopg  # only on PostgreSQL

        while not self._stop_event.is_set():
            connection = connections[SANDBOX_DB]
            try:
                connection.ensure_connection()
                raw = connection.connection  # psycopg 3, autocommit outside atomic blocks
                raw.execute(f"LISTEN {WAKE_CHANNEL}")
                while not self._stop_event.is_set():
                    for _ in raw.notifies(timeout=self.POLL_SECONDS):
                        _wake.set()
            # The raw connection raises psycopg's own errors, not Django's wrappers.
            except (DatabaseError, psycopg.Error, OSError) as exc:
                logger.warning("webhook wake-up listener lost its connection: %s", exc)
                self._stop_event.wait(self.POLL_SECONDS)
            finally:
                connection.close()
