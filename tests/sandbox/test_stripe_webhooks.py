"""Stripe webhooks of the sandbox: endpoints, signed deliveries to a real loopback receiver,
retries with backoff until a 2xx, and the event list."""

from __future__ import annotations

import datetime as dt
import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import orjson
import pytest

from sandbox.models import SandboxWebhookDelivery
from sandbox.stripe import api, clock, webhooks

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

V1 = "/stripe/v1"


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers with scripted statuses (then 200)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def events(self) -> list[dict]:
        return [orjson.loads(body) for _headers, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/stripe"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def stripe(client) -> httpx.Client:
    client.headers["Authorization"] = f"Bearer {api.SECRET_KEY}"
    return client


def endpoint(stripe, url: str, *events: str) -> dict:
    answer = stripe.post(
        f"{V1}/webhook_endpoints", data={"url": url, "enabled_events[]": list(events or ["*"])}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_endpoint_is_created_with_a_signing_secret_shown_only_once(stripe, receiver):
    created = endpoint(stripe, receiver.url, "invoice.paid", "invoice.finalized")
    assert created["id"].startswith("we_")
    assert created["secret"].startswith("whsec_")
    assert created["enabled_events"] == ["invoice.paid", "invoice.finalized"]
    fetched = stripe.get(f"{V1}/webhook_endpoints/{created['id']}").json()
    assert "secret" not in fetched
    listed = stripe.get(f"{V1}/webhook_endpoints").json()
    assert [e["id"] for e in listed["data"]] == [created["id"]]


@pytest.mark.parametrize(
    "data",
    [
        {"enabled_events[]": "*"},
        {"url": "not a url", "enabled_events[]": "*"},
        {"url": "http://127.0.0.1/x", "enabled_events[]": "invoice.exploded"},
    ],
)
def test_a_bad_endpoint_is_refused(stripe, data):
    assert stripe.post(f"{V1}/webhook_endpoints", data=data).status_code == 400


def test_a_delivery_is_signed_so_that_the_secret_verifies_it(stripe, receiver):
    secret = endpoint(stripe, receiver.url)["secret"]
    cus = stripe.post(f"{V1}/customers", data={"name": "Acme"}).json()
    outcome = webhooks.webhook_deliveries_send_due()
    assert outcome.delivered == 1
    headers, body = receiver.received[0]
    assert webhooks.webhook_signature_verify(
        secret=secret, payload=body, header=headers["stripe-signature"]
    )
    assert not webhooks.webhook_signature_verify(
        secret="whsec_other", payload=body, header=headers["stripe-signature"]
    )
    event = orjson.loads(body)
    assert event["object"] == "event"
    assert event["type"] == "customer.created"
    assert event["data"]["object"]["id"] == cus["id"]


def test_the_signature_is_hmac_sha256_of_timestamp_dot_payload(stripe, receiver):
    import hashlib
    import hmac

    secret = endpoint(stripe, receiver.url)["secret"]
    stripe.post(f"{V1}/customers", data={"name": "Acme"})
    webhooks.webhook_deliveries_send_due()
    headers, body = receiver.received[0]
    parts = dict(part.split("=", 1) for part in headers["stripe-signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256)
    assert parts["v1"] == expected.hexdigest()


def test_a_failed_delivery_is_retried_with_backoff_until_the_receiver_answers_2xx(stripe, receiver):
    endpoint(stripe, receiver.url, "customer.created")
    receiver.statuses = [500, 503]
    stripe.post(f"{V1}/customers", data={"name": "Acme"})
    start = clock.now()
    assert webhooks.webhook_deliveries_send_due(now=start).failed == 1
    # Not due again before its backoff has passed.
    assert webhooks.webhook_deliveries_send_due(now=start + dt.timedelta(seconds=1)).failed == 0
    second = start + webhooks.backoff(1)
    assert webhooks.webhook_deliveries_send_due(now=second).failed == 1
    third = second + webhooks.backoff(2)
    assert webhooks.webhook_deliveries_send_due(now=third).delivered == 1
    delivery = SandboxWebhookDelivery.objects.get()
    assert delivery.attempts == 3
    assert delivery.last_status == 200
    assert delivery.delivered_at is not None
    ids = {event["id"] for event in receiver.events()}
    assert len(receiver.received) == 3
    assert len(ids) == 1  # the same event each time: at least once, same id to dedupe on


def test_an_unreachable_endpoint_is_retried_later(stripe):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint(stripe, f"http://127.0.0.1:{port}/closed")
    stripe.post(f"{V1}/customers", data={"name": "Acme"})
    assert webhooks.webhook_deliveries_send_due().failed == 1
    delivery = SandboxWebhookDelivery.objects.get()
    assert delivery.delivered_at is None
    assert delivery.last_error
    assert delivery.next_attempt_at > clock.now()


def test_only_the_enabled_events_are_delivered_and_a_disabled_endpoint_gets_none(stripe, receiver):
    endpoint(stripe, receiver.url, "invoice.created")
    disabled = endpoint(stripe, receiver.url)
    stripe.post(f"{V1}/webhook_endpoints/{disabled['id']}", data={"disabled": "true"})
    cus = stripe.post(f"{V1}/customers", data={"name": "Acme"}).json()
    stripe.post(f"{V1}/invoices", data={"customer": cus["id"]})
    webhooks.webhook_deliveries_send_due()
    assert [event["type"] for event in receiver.events()] == ["invoice.created"]


def test_events_are_listed_with_a_type_filter_and_pending_webhooks(stripe, receiver):
    endpoint(stripe, receiver.url, "customer.created")
    for name in ("A", "B"):
        stripe.post(f"{V1}/customers", data={"name": name})
    listed = stripe.get(f"{V1}/events", params={"type": "customer.created"}).json()
    assert [e["data"]["object"]["name"] for e in listed["data"]] == ["B", "A"]
    assert all(e["pending_webhooks"] == 1 for e in listed["data"])
    webhooks.webhook_deliveries_send_due()
    event = stripe.get(f"{V1}/events/{listed['data'][0]['id']}").json()
    assert event["pending_webhooks"] == 0
    wildcard = stripe.get(f"{V1}/events", params={"type": "customer.*"}).json()
    assert len(wildcard["data"]) == 2


def test_an_event_carries_the_idempotency_key_of_the_request_that_caused_it(stripe):
    stripe.post(f"{V1}/customers", data={"name": "A"}, headers={"Idempotency-Key": "k-evt"})
    event = stripe.get(f"{V1}/events").json()["data"][0]
    assert event["request"]["idempotency_key"] == "k-evt"
    assert event["request"]["id"].startswith("req_")


@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_the_background_dispatcher_delivers_without_being_called(stripe, receiver):
    endpoint(stripe, receiver.url, "customer.created")
    stripe.post(f"{V1}/customers", data={"name": "Acme"})
    dispatcher = webhooks.webhook_dispatcher_start(interval=0.05)
    try:
        deadline = dt.datetime.now(tz=dt.UTC) + dt.timedelta(seconds=10)
        while not receiver.received and dt.datetime.now(tz=dt.UTC) < deadline:
            threading.Event().wait(0.05)
    finally:
        dispatcher.stop()
        dispatcher.join(5)
    assert [event["type"] for event in receiver.events()] == ["customer.created"]
