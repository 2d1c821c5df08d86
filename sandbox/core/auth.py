"""Test credentials and stateless bearer tokens shared by the dialects.

Tokens are HMAC-signed (`<system>.<subject>.<expiry>.<signature>`, keyed by SECRET_KEY), so they
survive a sandbox restart like a real vendor session does, and no token table is needed. The
static test secrets below are public by design: the sandbox holds only synthetic data and
listens on loopback. `python manage.py sandbox credentials` prints them per system.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from django.conf import settings

from sandbox.core.protocol import Request


def _signature(payload: str) -> str:
    key = hashlib.sha256(b"ledgerbridge-sandbox:" + settings.SECRET_KEY.encode()).digest()
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode().rstrip("=")


def token_issue(*, system: str, subject: str, ttl_seconds: int = 7200) -> str:
    """A bearer token for `subject` on `system`, valid for ttl_seconds."""
    expiry = int(time.time()) + ttl_seconds
    payload = f"{system}.{subject}.{expiry}"
    return f"{payload}.{_signature(payload)}"


def token_subject(*, system: str, token: str) -> str | None:
    """The subject of a valid, unexpired token of this system; None otherwise."""
    parts = token.rsplit(".", 3)
    if len(parts) != 4:
        return None
    token_system, subject, expiry, signature = parts
    payload = f"{token_system}.{subject}.{expiry}"
    if token_system != system or not hmac.compare_digest(signature, _signature(payload)):
        return None
    if not expiry.isdigit() or int(expiry) < time.time():
        return None
    return subject


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer …` (or OAuth) header, if any."""
    value = request.header("authorization") or ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() not in {"bearer", "oauth"} or not token.strip():
        return None
    return token.strip()
