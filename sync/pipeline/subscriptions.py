"""Event subscriptions: ask a source system to push its events to Ledgerbridge's webhooks.

Kantata (PSA): `POST webhook_subscriptions.json` with the receiving URL, the event types and a
fresh secret, which the connection keeps (encrypted) to verify each delivery's HMAC signature
(sync/webhooks.py). Through the one HTTP module, like every other call to a vendor.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.db import transaction

from sync.connectors.auth import BearerAuth
from sync.connectors.base import ConnectionConfig
from sync.connectors.http import VendorHttp
from sync.errors import DomainError
from sync.pipeline.models import Connection
from sync.pipeline.models.connections import Dialect
from sync.webhooks import SECRET_KEY

PSA_EVENT_TYPES = ("time_entry.approved", "expense.approved")


class SubscriptionRefused(DomainError):
    """The connection cannot subscribe to events (wrong dialect, no token)."""


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
        http.request("POST", "webhook_subscriptions.json", json={"webhook_subscription": {
            "url": url, "event_types": list(event_types), "secret": secret,
        }})
    finally:
        http.close()
    with transaction.atomic():
        locked = Connection.objects.select_for_update().get(pk=connection.pk)
        locked.credentials_set({**{k: str(v) for k, v in locked.credentials_dict().items()},
                                SECRET_KEY: secret})
        locked.save()
    return Subscribed(connection=locked, url=url, event_types=tuple(event_types))
