"""Signed event feeds: billing (Stripe-style) and PSA (Kantata approval) webhooks into the inbox.

The signature IS the authentication: these views are exempt from login and CSRF, and accept a
delivery only when its HMAC verifies with the connection's `webhook_secret` (kept in its
encrypted credentials) and its timestamp is within `TOLERANCE_SECONDS`. A verified event is
stored in the inbox BEFORE anything processes it, keyed by its event id: a second delivery of
the same event id (senders deliver at least once) is acknowledged with 200 and stored once.

A newly stored PSA approval event is handed to the `sync.approval_event_process` Celery task
once it has committed (`transaction.on_commit`), which posts the approved time to the ERP at
once (sync/pipeline/approval_events.py); if the broker cannot take it, the event waits pending
for the next sync cycle. The sender is answered either way: the event is stored.

Answers are JSON (`{"error": …}` for a refusal): 200 received; 400 a bad signature, a stale
timestamp, or a body that is not a JSON event; 401 no signature; 413 a body larger than
DATA_UPLOAD_MAX_MEMORY_SIZE. A name that is no enabled connection of that kind, and a connection
with no webhook secret, are answered exactly as a signature that does not match (the delivery is
checked against a random secret): the answers do not tell which connection names exist. The log
says the real reason. Never a 500 for anything the sender controls.

Each vendor's scheme is checked by its package: `sync/integrations/stripe/webhooks.py`,
`sync/integrations/kantata/webhooks.py`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from kombu.exceptions import OperationalError as BrokerUnavailable

from sync.connectors.base import (
    CORRELATION_HEADER,
    SignatureInvalid,
    SignatureMissing,
    correlation_scope,
)
from sync.connectors.http import json_decode
from sync.integrations.kantata.webhooks import kantata_webhook_verify
from sync.integrations.stripe.webhooks import stripe_webhook_verify
from sync.pipeline.approval_events import ENTITY as PSA_ENTITY
from sync.pipeline.inbox import inbox_store
from sync.pipeline.models import Connection, InboxItem
from sync.pipeline.models.connections import Dialect

logger = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300
SECRET_KEY = "webhook_secret"  # noqa: S105 - the name of a credentials key, not a secret
# Stripe's pulled `events` and its webhooks share event ids: one inbox entity dedups both.
BILLING_ENTITY = "events"
MAX_EVENT_ID = 255


class WebhookRefused(Exception):
    """A delivery we do not accept; `status` and `message` are what the sender is told."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# -- storing (service) -------------------------------------------------------------------------
@dataclass(frozen=True)
class WebhookReceipt:
    event_id: str
    stored: bool
    inbox_item_id: int | None


def webhook_event_store(
    *,
    connection: Connection,
    entity: str,
    event_id: str,
    payload: dict[str, Any],
    correlation_id: str | None = None,
) -> WebhookReceipt:
    """Store one verified event in the inbox unless its event id is there already.

    Idempotent by event id: concurrent deliveries of one event are serialised on the
    connection's row, so exactly one of them stores it.
    """
    with transaction.atomic():
        Connection.objects.select_for_update().filter(pk=connection.pk).exists()
        known = (
            InboxItem.objects.filter(system=connection.system, entity=entity, external_id=event_id)
            .values_list("id", flat=True)
            .first()
        )
        if known is not None:
            return WebhookReceipt(event_id=event_id, stored=False, inbox_item_id=known)
        stored = inbox_store(
            system=connection.system,
            entity=entity,
            connection=connection,
            records=[(event_id, payload)],
            correlation_id=correlation_id,
        )
    return WebhookReceipt(event_id=event_id, stored=True, inbox_item_id=stored.new[0].id)


# -- views (thin) ------------------------------------------------------------------------------
def _event(body: bytes, id_field: str) -> tuple[str, dict[str, Any]]:
    try:
        event = json_decode(body)
    except ValueError as exc:
        raise WebhookRefused(400, f"the body is not JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise WebhookRefused(400, "the body is not a JSON object")
    event_id = event.get(id_field)
    if isinstance(event_id, bool) or not isinstance(event_id, str | int) or event_id == "":
        raise WebhookRefused(400, f"the event has no `{id_field}`")
    if len(str(event_id)) > MAX_EVENT_ID:
        raise WebhookRefused(400, f"`{id_field}` is longer than {MAX_EVENT_ID} characters")
    return str(event_id), event


def approval_event_enqueue(inbox_item_id: int) -> None:
    """Hand a stored approval event to its Celery task. A broker that cannot take it is logged,
    not raised: the event is stored and the next sync cycle processes it."""
    from sync.tasks_events import approval_event_process

    try:
        approval_event_process.apply_async(kwargs={"inbox_item_id": inbox_item_id})
    except BrokerUnavailable as exc:
        logger.warning(
            "approval event %s not enqueued (%s): it waits for the next cycle", inbox_item_id, exc
        )


def _secret_of(connection: Connection | None, *, name: str, dialect: str) -> str:
    """The connection's webhook secret, or "" (the reason logged) when there is none to use."""
    if connection is None:
        logger.warning(
            "webhook for %r refused: no enabled %s connection by that name "
            "(answered as a signature mismatch)",
            name,
            dialect,
        )
        return ""
    secret = str(connection.credentials_dict().get(SECRET_KEY) or "")
    if not secret:
        logger.warning(
            "webhook for %r refused: the connection has no webhook secret "
            "configured (`manage.py sync webhooks` sets one; answered as a signature "
            "mismatch)",
            name,
        )
    return secret


def _receive(
    request: HttpRequest,
    *,
    name: str,
    dialect: str,
    entity: str,
    id_field: str,
    verify: Callable[..., None],
    on_stored: Callable[[int], None] | None = None,
) -> JsonResponse:
    try:
        body = request.body
    except RequestDataTooBig:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        logger.warning("webhook for %r refused: the body is over %s bytes", name, limit)
        return JsonResponse({"error": f"the body is larger than {limit} bytes"}, status=413)
    connection = Connection.objects.filter(name=name, dialect=dialect, enabled=True).first()
    secret = _secret_of(connection, name=name, dialect=dialect)
    try:
        try:
            # No connection or no secret: the same check against a secret nobody knows, so
            # that the answer (and the work done) is that of a wrong signature.
            verify(
                headers=request.headers,
                body=body,
                secret=secret or secrets.token_hex(32),
                tolerance_seconds=TOLERANCE_SECONDS,
            )
        except SignatureMissing as exc:
            raise WebhookRefused(401, str(exc)) from exc
        except SignatureInvalid as exc:
            raise WebhookRefused(400, f"signature refused: {exc}") from exc
        if connection is None or not secret:  # a random 256-bit secret does not verify
            raise WebhookRefused(400, "signature refused: the signature does not match")
        event_id, event = _event(body, id_field)
    except WebhookRefused as refused:
        logger.warning("webhook for %r refused: %s", name, refused.message)
        return JsonResponse({"error": refused.message}, status=refused.status)
    correlation = (request.headers.get(CORRELATION_HEADER) or "")[:64] or None
    with correlation_scope(correlation):
        receipt = webhook_event_store(
            connection=connection,
            entity=entity,
            event_id=event_id,
            payload=event,
            correlation_id=correlation,
        )
        logger.info(
            "webhook %s event %s %s",
            name,
            event_id,
            "stored" if receipt.stored else "already stored",
        )
        if receipt.stored and on_stored is not None:
            # After the commit: a worker must find the event it is told about.
            transaction.on_commit(partial(on_stored, receipt.inbox_item_id))
    return JsonResponse({"received": True, "event_id": event_id, "stored": receipt.stored})


@csrf_exempt
@login_not_required
@require_POST
def billing_webhook(request: HttpRequest, name: str) -> JsonResponse:
    """POST /hooks/billing/<connection name>: a Stripe-style signed event."""
    return _receive(
        request,
        name=name,
        dialect=Dialect.STRIPE,
        entity=BILLING_ENTITY,
        id_field="id",
        verify=stripe_webhook_verify,
    )


@csrf_exempt
@login_not_required
@require_POST
def psa_webhook(request: HttpRequest, name: str) -> JsonResponse:
    """POST /hooks/psa/<connection name>: a Kantata approval event, posted on at once."""
    return _receive(
        request,
        name=name,
        dialect=Dialect.KANTATA,
        entity=PSA_ENTITY,
        id_field="event_id",
        verify=kantata_webhook_verify,
        on_stored=approval_event_enqueue,
    )
