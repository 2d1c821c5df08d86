"""Kantata approval webhook signatures, the PSA sandbox's scheme (sandbox/kantata/webhooks.py):
`X-Kantata-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` with
`X-Kantata-Timestamp: <unix>`."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from sync.connectors.base import SignatureInvalid, SignatureMissing

SIGNATURE_HEADER = "X-Kantata-Signature"
TIMESTAMP_HEADER = "X-Kantata-Timestamp"


def kantata_webhook_verify(
    *, headers: Mapping[str, str], body: bytes, secret: str, tolerance_seconds: int
) -> None:
    """Check a delivery's headers against its raw body. Raises SignatureMissing without both
    headers, SignatureInvalid when they do not verify."""
    signature = headers.get(SIGNATURE_HEADER)
    timestamp = headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise SignatureMissing(
            f"the {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} headers are required"
        )
    kantata_signature_verify(
        payload=body,
        signature=signature,
        timestamp=timestamp,
        secret=secret,
        tolerance_seconds=tolerance_seconds,
    )


def kantata_signature_verify(
    *,
    payload: bytes,
    signature: str,
    timestamp: str,
    secret: str,
    tolerance_seconds: int = 300,
    now: float | None = None,
) -> None:
    """Check an `X-Kantata-Signature` against the raw body and `X-Kantata-Timestamp`.

    Raises SignatureInvalid when the timestamp is unreadable or outside the tolerance, or the
    signature does not match (compared in constant time).
    """
    if not timestamp.isdigit():
        raise SignatureInvalid("the X-Kantata-Timestamp header is not a unix time")
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + payload, hashlib.sha256)
    if not hmac.compare_digest("sha256=" + mac.hexdigest(), signature.strip()):
        raise SignatureInvalid("the signature does not match the payload")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_seconds:
        raise SignatureInvalid(f"timestamp {timestamp} is outside the tolerance")
