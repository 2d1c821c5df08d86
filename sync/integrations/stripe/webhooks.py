"""Stripe webhook signatures: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
"<t>.<body>")>` (https://docs.stripe.com/webhooks#verify-manually)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from sync.connectors.base import SignatureInvalid, SignatureMissing

SIGNATURE_HEADER = "Stripe-Signature"


def stripe_webhook_verify(
    *, headers: Mapping[str, str], body: bytes, secret: str, tolerance_seconds: int
) -> None:
    """Check a delivery's headers against its raw body. Raises SignatureMissing without a
    `Stripe-Signature` header, SignatureInvalid when it does not verify."""
    header = headers.get(SIGNATURE_HEADER)
    if not header:
        raise SignatureMissing(f"the {SIGNATURE_HEADER} header is missing")
    stripe_signature_verify(body, header, secret, tolerance_seconds=tolerance_seconds)


def stripe_signature_verify(
    payload: bytes,
    header: str,
    secret: str,
    *,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Check a webhook's `Stripe-Signature` header against the raw request body.

    Passes when any `v1` signature equals HMAC-SHA256(secret, "{t}.{payload}") and `t` is
    within `tolerance_seconds` of `now`. Raises SignatureInvalid otherwise.
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for part in (header or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureInvalid("no timestamp or v1 signature in the Stripe-Signature header")
    signed = str(timestamp).encode() + b"." + payload
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise SignatureInvalid("no v1 signature matches the payload")
    current = time.time() if now is None else now
    if tolerance_seconds > 0 and abs(current - timestamp) > tolerance_seconds:
        raise SignatureInvalid(f"timestamp {timestamp} is outside the tolerance")
