"""Signed webhooks are verified, stored in the inbox before processing, and stored once."""

from __future__ import annotations

import time

import orjson
import pytest
from django.urls import include, path

from sandbox.kantata.webhooks import webhook_signature
from sandbox.stripe.webhooks import webhook_signature_header
from sync.connectors.base import SignatureInvalid
from sync.integrations.kantata.webhooks import kantata_signature_verify
from sync.pipeline.models import Connection, InboxItem

# The lead mounts sync.urls under hooks/ in portal/urls.py; this module does the same.
urlpatterns = [path("hooks/", include("sync.urls"))]
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

SECRET = "whsec_test_secret"


@pytest.fixture
def billing() -> Connection:
    conn = Connection(
        name="stripe", system="billing", dialect="stripe", base_url="http://sandbox.test/stripe"
    )
    conn.credentials_set({"secret_key": "sk_test", "webhook_secret": SECRET})
    conn.save()
    return conn


@pytest.fixture
def psa() -> Connection:
    conn = Connection(
        name="kantata",
        system="psa",
        dialect="kantata",
        base_url="http://sandbox.test/kantata/api/v1",
    )
    conn.credentials_set({"access_token": "t", "webhook_secret": SECRET})
    conn.save()
    return conn


def stripe_event(event_id: str = "evt_1") -> bytes:
    return orjson.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "invoice.paid",
            "data": {"object": {"id": "in_1", "amount_paid": 90000}},
        }
    )


def post_billing(
    client,
    body: bytes,
    *,
    timestamp: int | None = None,
    secret: str = SECRET,
    name: str = "stripe",
    signature: str | None = None,
):
    header = (
        signature
        if signature is not None
        else webhook_signature_header(
            secret=secret,
            payload=body,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )
    )
    headers = {"Stripe-Signature": header} if header else {}
    return client.post(
        f"/hooks/billing/{name}", data=body, content_type="application/json", headers=headers
    )


def kantata_event(event_id: str = "41") -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "event_type": "time_entry.approved",
            "subject_type": "time_entries",
            "subject_id": "7",
            "occurred_at": "2026-10-14T09:00:00+00:00",
        }
    )


def post_psa(
    client,
    body: bytes,
    *,
    timestamp: int | None = None,
    secret: str = SECRET,
    name: str = "kantata",
):
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return client.post(
        f"/hooks/psa/{name}",
        data=body,
        content_type="application/json",
        headers={
            "X-Kantata-Timestamp": stamp,
            "X-Kantata-Signature": webhook_signature(secret=secret, timestamp=stamp, body=body),
        },
    )


def test_a_validly_signed_billing_event_is_stored_in_the_inbox_before_processing(client, billing):
    answer = post_billing(client, stripe_event())
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"received": True, "event_id": "evt_1", "stored": True}
    item = InboxItem.objects.get()
    assert (item.system, item.entity, item.external_id, item.status) == (
        "billing",
        "events",
        "evt_1",
        "pending",
    )
    assert item.connection == billing
    assert item.payload["type"] == "invoice.paid"


def test_a_tampered_billing_event_is_refused_with_400_and_not_stored(client, billing):
    body = stripe_event()
    header = webhook_signature_header(secret=SECRET, payload=body, timestamp=int(time.time()))
    tampered = body.replace(b"90000", b"10")
    answer = post_billing(client, tampered, signature=header)
    assert answer.status_code == 400
    assert "signature" in answer.json()["error"]
    assert not InboxItem.objects.exists()


def test_an_event_signed_with_another_secret_is_refused(client, billing):
    answer = post_billing(client, stripe_event(), secret="whsec_someone_else")
    assert answer.status_code == 400
    assert not InboxItem.objects.exists()


def test_a_billing_event_signed_too_long_ago_is_refused(client, billing):
    answer = post_billing(client, stripe_event(), timestamp=int(time.time()) - 3600)
    assert answer.status_code == 400
    assert "tolerance" in answer.json()["error"]
    assert not InboxItem.objects.exists()


def test_a_billing_event_without_a_signature_is_unauthorised(client, billing):
    answer = post_billing(client, stripe_event(), signature="")
    assert answer.status_code == 401
    assert "Stripe-Signature" in answer.json()["error"]


def test_a_replayed_event_id_is_acknowledged_and_stored_once(client, billing):
    first = post_billing(client, stripe_event("evt_9"))
    again = post_billing(client, stripe_event("evt_9"), timestamp=int(time.time()) + 1)
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["stored"], again.json()["stored"]) == (True, False)
    assert InboxItem.objects.filter(external_id="evt_9").count() == 1


def refusal(answer) -> tuple[int, dict]:
    return answer.status_code, answer.json()


def test_an_unknown_name_is_answered_exactly_like_a_wrong_signature_for_a_known_one(
    client, billing, psa
):
    wrong_billing = post_billing(client, stripe_event(), secret="whsec_guess")
    wrong_psa = post_psa(client, kantata_event(), secret="guess")
    assert wrong_billing.status_code == 400
    assert refusal(post_billing(client, stripe_event(), secret="whsec_guess", name="nobody")) == (
        refusal(wrong_billing)
    )
    assert refusal(post_psa(client, kantata_event(), secret="guess", name="nobody")) == (
        refusal(wrong_psa)
    )
    # Even signed with the secret of a connection of the other kind.
    assert refusal(post_billing(client, stripe_event(), name="kantata")) == refusal(wrong_billing)
    assert not InboxItem.objects.exists()


def test_an_unknown_name_without_a_signature_is_unauthorised_like_a_known_one(client, billing):
    known = post_billing(client, stripe_event(), signature="")
    unknown = post_billing(client, stripe_event(), signature="", name="nobody")
    assert known.status_code == 401
    assert refusal(unknown) == refusal(known)


def test_a_disabled_connection_is_answered_like_a_wrong_signature_even_when_signed_well(
    client, billing
):
    wrong = post_billing(client, stripe_event(), secret="whsec_guess")
    billing.enabled = False
    billing.save()
    assert refusal(post_billing(client, stripe_event())) == refusal(wrong)
    assert not InboxItem.objects.exists()


def test_a_connection_without_a_webhook_secret_is_answered_like_a_wrong_signature(
    client, billing, caplog
):
    wrong = post_billing(client, stripe_event(), secret="whsec_guess")
    billing.credentials_set({"secret_key": "sk_test"})
    billing.save()
    assert refusal(post_billing(client, stripe_event(), secret="")) == refusal(wrong)
    assert "secret" not in refusal(wrong)[1]["error"]
    assert "no webhook secret configured" in caplog.text  # the operators are told why
    assert not InboxItem.objects.exists()


@pytest.mark.parametrize("hook", ["billing", "psa"])
def test_a_body_over_the_upload_limit_is_a_413_in_json(client, billing, psa, settings, hook):
    padding = b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    if hook == "billing":
        answer = post_billing(client, stripe_event()[:-1] + padding + b"}")
    else:
        answer = post_psa(client, kantata_event()[:-1] + padding + b"}")
    assert answer.status_code == 413
    assert answer["Content-Type"] == "application/json"
    assert set(answer.json()) == {"error"}
    assert not InboxItem.objects.exists()


def test_a_signed_body_that_is_not_json_is_a_400(client, billing):
    answer = post_billing(client, b"{not json")
    assert answer.status_code == 400
    assert "not JSON" in answer.json()["error"]
    assert not InboxItem.objects.exists()


def test_an_event_with_an_integer_beyond_64_bits_is_stored_exactly(client, billing):
    body = stripe_event()[:-1] + b', "sequence": 123456789012345678901234567}'
    answer = post_billing(client, body)
    assert answer.status_code in (200, 202), answer.content
    assert InboxItem.objects.get().payload["sequence"] == 123456789012345678901234567


def test_a_signed_event_without_an_id_is_a_400(client, billing):
    answer = post_billing(client, orjson.dumps({"type": "invoice.paid"}))
    assert answer.status_code == 400
    assert "`id`" in answer.json()["error"]


def test_a_webhook_is_post_only(client, billing):
    assert client.get("/hooks/billing/stripe").status_code == 405


def test_a_kantata_approval_signed_as_the_sandbox_signs_it_is_stored(client, psa):
    answer = post_psa(client, kantata_event("41"))
    assert answer.status_code == 200, answer.content
    item = InboxItem.objects.get()
    assert (item.system, item.entity, item.external_id) == ("psa", "approval_events", "41")
    assert item.payload["event_type"] == "time_entry.approved"


def test_a_kantata_approval_delivered_twice_is_stored_once(client, psa):
    post_psa(client, kantata_event("41"))
    again = post_psa(client, kantata_event("41"))
    assert again.status_code == 200
    assert again.json()["stored"] is False
    assert InboxItem.objects.count() == 1


def test_a_stale_or_tampered_kantata_approval_is_refused(client, psa):
    stale = post_psa(client, kantata_event(), timestamp=int(time.time()) - 3600)
    forged = post_psa(client, kantata_event(), secret="guess")
    missing = client.post(
        "/hooks/psa/kantata", data=kantata_event(), content_type="application/json"
    )
    assert (stale.status_code, forged.status_code, missing.status_code) == (400, 400, 401)
    assert not InboxItem.objects.exists()


def test_a_webhook_carries_the_senders_correlation_id_into_the_inbox(client, psa):
    body = kantata_event()
    stamp = str(int(time.time()))
    client.post(
        "/hooks/psa/kantata",
        data=body,
        content_type="application/json",
        headers={
            "X-Kantata-Timestamp": stamp,
            "X-Correlation-ID": "deal-42",
            "X-Kantata-Signature": webhook_signature(secret=SECRET, timestamp=stamp, body=body),
        },
    )
    assert InboxItem.objects.get().correlation_id == "deal-42"


@pytest.mark.parametrize(
    ("signature", "timestamp", "now", "valid"),
    [
        ("good", "1000", 1000.0, True),
        ("good", "1000", 1299.0, True),
        ("good", "1000", 1301.0, False),
        ("bad", "1000", 1000.0, False),
        ("good", "soon", 1000.0, False),
    ],
)
def test_the_kantata_signature_check(signature, timestamp, now, valid):
    body = b'{"event_id": "1"}'
    good = webhook_signature(secret=SECRET, timestamp=timestamp, body=body)
    given = good if signature == "good" else "sha256=" + "0" * 64
    if valid:
        kantata_signature_verify(
            payload=body, signature=given, timestamp=timestamp, secret=SECRET, now=now
        )
    else:
        with pytest.raises(SignatureInvalid):
            kantata_signature_verify(
                payload=body, signature=given, timestamp=timestamp, secret=SECRET, now=now
            )


def test_a_stored_kantata_approval_is_handed_to_its_task_after_the_commit_and_a_repeat_is_not(
    client, psa, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as first:
        post_psa(client, kantata_event("41"))
    with django_capture_on_commit_callbacks(execute=False) as repeat:
        post_psa(client, kantata_event("41"))
    assert len(first) == 1
    assert first[0].args == (InboxItem.objects.get().pk,)
    assert repeat == []


def test_a_billing_event_is_stored_for_the_cycle_and_enqueues_nothing(
    client, billing, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post_billing(client, stripe_event())
    assert callbacks == []
