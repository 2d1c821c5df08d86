"""Kantata approval webhooks: subscription, signed delivery to a real receiver, retries."""

from __future__ import annotations

import datetime as dt
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from sandbox import storage
from sandbox.kantata import webhooks
from sandbox.models import SandboxWebhookDelivery, SandboxWebhookSubscription
from sandbox.router import SANDBOX_DB

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

API = "/kantata/api/v1"


class Receiver:
    """A loopback HTTP endpoint that records deliveries and answers with `status`."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/kantata"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture
def kantata(client):
    client.headers["Authorization"] = "Bearer sandbox-kantata-token"
    return client


def unapproved_entry():
    workspace = storage.record_create(system="kantata", object_type="workspaces", data={})
    return storage.record_create(
        system="kantata",
        object_type="time_entries",
        data={"time_in_minutes": 60},
        parent_id=workspace.pk,
        status="unapproved",
    )


def test_an_approval_is_delivered_signed_to_the_subscriber(kantata, receiver):
    created = kantata.post(
        f"{API}/webhook_subscriptions.json",
        json={"webhook_subscription": {"url": receiver.url, "secret": "s3cret"}},
    )
    assert created.status_code == 200, created.text
    entry = unapproved_entry()
    assert webhooks.time_entries_approve(ids=[entry.pk]) == 1
    assert webhooks.webhook_deliveries_send_due() == 1
    headers, body = receiver.received[0]
    expected = webhooks.webhook_signature(
        secret="s3cret", timestamp=headers["X-Kantata-Timestamp"], body=body
    )
    assert headers["X-Kantata-Signature"] == expected
    assert b'"time_entry.approved"' in body
    listed = kantata.get(f"{API}/time_entries.json", params={"approved": "true"}).json()
    assert listed["count"] == 1


def test_approving_twice_sends_one_delivery(kantata, receiver):
    kantata.post(
        f"{API}/webhook_subscriptions.json", json={"webhook_subscription": {"url": receiver.url}}
    )
    entry = unapproved_entry()
    webhooks.time_entries_approve(ids=[entry.pk])
    assert webhooks.time_entries_approve(ids=[entry.pk]) == 0
    assert SandboxWebhookDelivery.objects.using(SANDBOX_DB).count() == 1


def test_a_failed_delivery_is_retried_later_with_backoff(kantata, receiver):
    kantata.post(
        f"{API}/webhook_subscriptions.json", json={"webhook_subscription": {"url": receiver.url}}
    )
    webhooks.time_entries_approve(ids=[unapproved_entry().pk])
    now = dt.datetime.now(tz=dt.UTC)
    receiver.status = 500
    assert webhooks.webhook_deliveries_send_due(now=now) == 0
    assert webhooks.webhook_deliveries_send_due(now=now + dt.timedelta(seconds=5)) == 0
    receiver.status = 200
    assert webhooks.webhook_deliveries_send_due(now=now + dt.timedelta(seconds=31)) == 1
    delivery = SandboxWebhookDelivery.objects.using(SANDBOX_DB).get()
    assert (delivery.attempts, delivery.last_status) == (2, 200)
    assert len(receiver.received) == 2


@pytest.mark.parametrize(
    "attributes",
    [{"url": "ftp://x"}, {"url": "http://x", "event_types": ["story.created"]}, {"colour": "red"}],
)
def test_an_invalid_subscription_is_a_422(kantata, attributes):
    answer = kantata.post(
        f"{API}/webhook_subscriptions.json", json={"webhook_subscription": attributes}
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["type"] == "validation"


def test_a_subscription_can_be_listed_without_its_secret_and_deleted(kantata, receiver):
    created = kantata.post(
        f"{API}/webhook_subscriptions.json", json={"webhook_subscription": {"url": receiver.url}}
    ).json()
    sub_id = created["results"][0]["id"]
    assert "secret" in created["webhook_subscriptions"][sub_id]
    listed = kantata.get(f"{API}/webhook_subscriptions.json").json()
    assert "secret" not in listed["webhook_subscriptions"][sub_id]
    assert kantata.delete(f"{API}/webhook_subscriptions/{sub_id}.json").status_code == 204
    assert kantata.get(f"{API}/webhook_subscriptions.json").json()["count"] == 0


@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_an_approval_wakes_the_dispatcher_instead_of_waiting_for_its_next_poll(receiver):
    SandboxWebhookSubscription.objects.using(SANDBOX_DB).create(
        system="kantata",
        url=receiver.url,
        event_types=list(webhooks.EVENT_TYPES),
        secret="s3cret",
        created_at=dt.datetime.now(tz=dt.UTC),
    )
    dispatcher = webhooks.WebhookDispatcher(interval=3600)  # it would poll once an hour
    dispatcher.start()
    try:
        webhooks.time_entries_approve(ids=[unapproved_entry().pk])
        deadline = time.monotonic() + 30
        while not receiver.received and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        dispatcher.stop()
        dispatcher.join(10)
    assert len(receiver.received) == 1
    assert SandboxWebhookDelivery.objects.using(SANDBOX_DB).get().delivered_at is not None
