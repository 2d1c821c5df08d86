"""Event subscriptions: ask a source system to push its events to Ledgerbridge's webhooks.

Kantata (PSA): `POST webhook_subscriptions.json` with the receiving URL, the event types and a
fresh secret. Stripe (billing): `POST /v1/webhook_endpoints` with the URL and `enabled_events[]`;
Stripe generates the signing secret and shows it in that answer only
(https://docs.stripe.com/api/webhook_endpoints/create). Either way the connection keeps the
secret (encrypted, as `webhook_secret`) to verify each delivery's HMAC signature
(sync/webhooks.py). Through the one HTTP module, like every other call to a vendor.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from urllib.parse import quote

from django.db import transaction

from sync.connectors.auth import BearerAuth
from sync.connectors.base import ConnectionConfig
from sync.connectors.failures import ABSENT
from sync.connectors.http import VendorHttp
from sync.errors import DomainError
from sync.integrations.stripe.client import StripeConnector
from sync.pipeline.models import Connection
from sync.pipeline.models.connections import Dialect
from sync.webhooks import SECRET_KEY

PSA_EVENT_TYPES = ("time_entry.approved", "expense.approved")
# Quote to cash: an invoice's life and its payments (Stripe reports payments of an invoice as
# invoice.* events). Named one by one: Stripe takes "*" or exact types, no "invoice.*".
BILLING_EVENT_TYPES = (
    "invoice.created",
    "invoice.updated",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.deleted",
)


class SubscriptionRefused(DomainError):
    """The connection cannot subscribe to events (wrong dialect, no token or API key), or the
    vendor answered without the signing secret."""


@dataclass(frozen=True)
class Subscribed:
    connection: Connection
    url: str
    event_types: tuple[str, ...]


def psa_webhook_subscribe(
    *, connection: Connection, portal_url: str, event_types: tuple[str, ...] = PSA_EVENT_TYPES
) -> Subscribed:
    """Subscribe `connection` (Kantata) to push `event_types` to
    `<portal_url>/hooks/psa/<connection name>`, with a new secret the connection keeps.
    Raises SubscriptionRefused, or TransportError when the PSA refuses."""
    if connection.dialect != Dialect.KANTATA:
        raise SubscriptionRefused(f"{connection} is not a Kantata connection.")
    credentials = connection.credentials_dict()
    token = credentials.get("access_token")
    if not token:
        raise SubscriptionRefused(f"{connection} has no access token to subscribe with.")
    url = f"{portal_url.rstrip('/')}/hooks/psa/{connection.name}"
    secret = secrets.token_hex(24)
    http = VendorHttp(ConnectionConfig.from_connection(connection), auth=BearerAuth(str(token)))
    try:
        http.request(
            "POST",
            "webhook_subscriptions.json",
            json={
                "webhook_subscription": {
                    "url": url,
                    "event_types": list(event_types),
                    "secret": secret,
                }
            },
        )
    finally:
        http.close()
    locked = _webhook_secret_store(connection=connection, secret=secret)
    return Subscribed(connection=locked, url=url, event_types=tuple(event_types))


def billing_webhook_subscribe(
    *,
    connection: Connection,
    portal_url: str,
    event_types: tuple[str, ...] = BILLING_EVENT_TYPES,
) -> Subscribed:
    """Create a webhook endpoint in the billing system (Stripe) that pushes `event_types` to
    `<portal_url>/hooks/billing/<connection name>`, and keep the signing secret it answers.

    The billing system's other endpoints for that same URL are deleted once the new secret is
    stored (their secret is no longer ours: their deliveries would only be refused), so calling
    this again replaces the endpoint instead of adding one. Raises SubscriptionRefused, or
    TransportError when the billing system refuses.
    """
    if connection.dialect != Dialect.STRIPE:
        raise SubscriptionRefused(f"{connection} is not a Stripe connection.")
    credentials = connection.credentials_dict()
    if not (credentials.get("secret_key") or credentials.get("api_key")):
        raise SubscriptionRefused(f"{connection} has no API key to subscribe with.")
    url = f"{portal_url.rstrip('/')}/hooks/billing/{connection.name}"
    stripe = StripeConnector(ConnectionConfig.from_connection(connection))
    try:
        # A fresh key: each call is meant to create a new endpoint with a new secret.
        endpoint = stripe.post(
            "/v1/webhook_endpoints",
            values={"url": url, "enabled_events": list(event_types)},
            idempotency_key=f"ledgerbridge-webhook-{uuid.uuid4().hex}",
        )
        secret = endpoint.get("secret")
        if not isinstance(secret, str) or not secret:
            raise SubscriptionRefused(
                f"{connection}: the billing system created webhook endpoint "
                f"{endpoint.get('id')} but answered no signing secret."
            )
        locked = _webhook_secret_store(connection=connection, secret=secret)
        listed = stripe.http.request("GET", "/v1/webhook_endpoints", params={"limit": 100}).json()
        for stale in listed.get("data") or []:
            if stale.get("url") == url and stale.get("id") != endpoint.get("id"):
                stripe.http.request(
                    "DELETE",
                    f"/v1/webhook_endpoints/{quote(str(stale['id']), safe='')}",
                    not_found=ABSENT,
                )
    finally:
        stripe.close()
    return Subscribed(connection=locked, url=url, event_types=tuple(event_types))


def _webhook_secret_store(*, connection: Connection, secret: str) -> Connection:
    """Keep `secret` in the connection's encrypted credentials as its webhook secret."""
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        locked.credentials_set(
            {**{k: str(v) for k, v in locked.credentials_dict().items()}, SECRET_KEY: secret}
        )
        locked.save()
    return locked
