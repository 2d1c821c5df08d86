"""Auth hooks: headers per dialect, and what a missing credential means."""

from __future__ import annotations

import pytest

from sync.connectors.auth import BearerAuth, NetSuiteTokenAuth, NoAuth, StripeKeyAuth
from sync.connectors.base import CONFIGURATION, TransportError


def test_a_bearer_token_and_a_stripe_key_are_sent_as_bearer_credentials():
    assert BearerAuth("t").headers(method="GET", url="u", http=None) == {
        "Authorization": "Bearer t"
    }
    stripe = StripeKeyAuth("sk_test_1", api_version="2024-06-20")
    assert stripe.headers(method="POST", url="u", http=None) == {
        "Authorization": "Bearer sk_test_1",
        "Stripe-Version": "2024-06-20",
    }
    assert NoAuth().headers(method="GET", url="u", http=None) == {}


def test_a_missing_credential_is_a_configuration_failure_before_any_request():
    with pytest.raises(TransportError) as caught:
        BearerAuth("")
    assert caught.value.kind == CONFIGURATION


def test_a_static_token_is_not_retried_after_a_401():
    assert BearerAuth("t").invalidate() is False


def test_each_netsuite_request_gets_a_fresh_nonce_and_signature():
    nonces = iter(["a", "b"])
    auth = NetSuiteTokenAuth(
        account="123",
        consumer_key="ck",
        consumer_secret="cs",
        token_id="ti",
        token_secret="ts",
        nonce=lambda: next(nonces),
        timestamp=lambda: 1,
    )
    first = auth.headers(method="GET", url="https://x/y", http=None)["Authorization"]
    second = auth.headers(method="GET", url="https://x/y", http=None)["Authorization"]
    assert first != second
    assert 'oauth_signature_method="HMAC-SHA256"' in first
