"""Event subscriptions: the billing system is asked for a webhook endpoint and its signing secret,
with which the events it then pushes are accepted and stored once."""

from __future__ import annotations

import pytest

from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.core.server import sandbox_server_start
from sandbox.models import SandboxWebhookDelivery, SandboxWebhookSubscription
from sandbox.product_setup import connections_from_sandbox
from sandbox.stripe.webhooks import http_post, webhook_deliveries_send_due
from sync.connectors.base import ConnectionConfig
from sync.integrations.stripe.client import StripeConnector
from sync.pipeline.models import Connection, InboxItem
from sync.pipeline.subscriptions import (
    BILLING_EVENT_TYPES,
    SubscriptionRefused,
    billing_webhook_subscribe,
)
from sync.webhooks import SECRET_KEY

# The sandbox (waitress) and the portal (live_server) answer from their own threads: committed
# data only.
pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)


@pytest.fixture
def served():
    """The sandbox on a real loopback port."""
    running = sandbox_server_start(app=SandboxApp(faults=FaultBook(seed=3)))
    yield running
    running.stop()


@pytest.fixture
def billing(served) -> Connection:
    connections_from_sandbox(base_url=served.base_url)
    return Connection.objects.get(name="stripe")


def invoice_billed(connection: Connection) -> str:
    """A customer and a finalised invoice in the billing system (customer.* is not subscribed)."""
    stripe = StripeConnector(ConnectionConfig.from_connection(connection))
    try:
        customer = stripe.upsert_by_external_id(
            record_type="customers", external_id="acme", body={"name": "Acme"}
        )
        invoice = stripe.invoice_create(
            values={"customer": customer, "currency": "eur"}, idempotency_key="test-invoice"
        )
        stripe.invoice_finalize(invoice_id=invoice["id"], idempotency_key="test-finalize")
    finally:
        stripe.close()
    return invoice["id"]


def test_billing_subscribe_keeps_a_secret_with_which_the_sandboxs_pushed_events_are_stored_once(
    billing, live_server
):
    done = billing_webhook_subscribe(connection=billing, portal_url=live_server.url)

    (endpoint,) = SandboxWebhookSubscription.objects.using("sandbox").filter(system="stripe")
    assert endpoint.url == f"{live_server.url}/hooks/billing/stripe" == done.url
    assert endpoint.event_types == list(BILLING_EVENT_TYPES)
    billing.refresh_from_db()
    assert billing.credentials_dict()[SECRET_KEY] == endpoint.secret
    assert billing.credentials_dict()["secret_key"]  # the API key is kept beside it

    invoice_id = invoice_billed(billing)
    sent: list[tuple[str, bytes, dict[str, str]]] = []

    def send(url: str, body: bytes, headers: dict[str, str]) -> int:
        sent.append((url, body, headers))
        return http_post(url, body, headers)

    outcome = webhook_deliveries_send_due(send=send)

    assert outcome.failed == 0
    assert outcome.delivered == len(sent) == 4
    stored = InboxItem.objects.filter(system="billing", entity="events", connection=billing)
    # An invoice of nothing is paid as it is finalised; customer.created is not subscribed to.
    assert {item.payload["type"] for item in stored} == {
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    }
    assert {item.payload["data"]["object"]["id"] for item in stored} == {invoice_id}
    # Senders deliver at least once: the same signed delivery again is acknowledged, not stored.
    assert http_post(*sent[0]) == 200
    assert stored.count() == outcome.delivered


def test_billing_subscribe_again_replaces_the_endpoint_and_its_secret(billing):
    first = billing_webhook_subscribe(connection=billing, portal_url="http://portal.test/")
    again = billing_webhook_subscribe(connection=billing, portal_url="http://portal.test/")

    (endpoint,) = SandboxWebhookSubscription.objects.using("sandbox").filter(system="stripe")
    assert endpoint.url == first.url == again.url == "http://portal.test/hooks/billing/stripe"
    assert again.connection.credentials_dict()[SECRET_KEY] == endpoint.secret
    assert first.connection.credentials_dict()[SECRET_KEY] != endpoint.secret


def test_after_subscribing_twice_each_event_is_pushed_once_and_verifies(billing, live_server):
    billing_webhook_subscribe(connection=billing, portal_url=live_server.url)
    billing_webhook_subscribe(connection=billing, portal_url=live_server.url)
    invoice_billed(billing)

    outcome = webhook_deliveries_send_due()

    assert outcome.failed == 0  # no endpoint with the old secret is left to be refused
    assert (
        SandboxWebhookDelivery.objects.using("sandbox").filter(delivered_at__isnull=True).count()
        == 0
    )
    assert InboxItem.objects.filter(system="billing").count() == outcome.delivered == 4


@pytest.mark.parametrize("name", ["kantata", "netsuite"])
def test_only_a_billing_connection_subscribes_to_billing_events(billing, name):
    with pytest.raises(SubscriptionRefused, match="not a Stripe connection"):
        billing_webhook_subscribe(
            connection=Connection.objects.get(name=name), portal_url="http://portal.test"
        )
    assert not SandboxWebhookSubscription.objects.using("sandbox").filter(system="stripe").exists()


def test_a_billing_connection_without_an_api_key_is_refused_before_any_call(billing):
    billing.credentials_set({"api_version": "2024-06-20"})
    billing.save()
    with pytest.raises(SubscriptionRefused, match="no API key"):
        billing_webhook_subscribe(connection=billing, portal_url="http://portal.test")
    billing.refresh_from_db()
    assert SECRET_KEY not in billing.credentials_dict()
