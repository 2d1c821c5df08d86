"""Stripe API v1 (billing): form-encoded writes with Idempotency-Key, cursor lists, webhooks.

Vendor documentation followed:
- Requests are `application/x-www-form-urlencoded` with nested keys (`metadata[k]=v`,
  `lines[0][price]=…`): https://docs.stripe.com/api/expanding_objects and /api (conventions);
- Idempotent requests: the `Idempotency-Key` header on every POST; a repeat with the same key
  answers the first result (24 h): https://docs.stripe.com/api/idempotent_requests;
- Pagination: `limit` (≤100), `starting_after`, `has_more`: https://docs.stripe.com/api/pagination;
- Search (customers, invoices; eventually consistent): https://docs.stripe.com/search;
- Invoice items, invoices and finalize: https://docs.stripe.com/api/invoiceitems,
  https://docs.stripe.com/api/invoices/finalize;
- Errors `{"error": {"type", "code", "message", "param"}}`, `Stripe-Should-Retry`:
  https://docs.stripe.com/error-low-level;
- Webhook signatures: `webhooks.py` beside this module.

Credentials: `secret_key` (sk_…); optional `api_version`, `webhook_secret` (whsec_…).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

from sync.connectors.auth import StripeKeyAuth
from sync.connectors.base import (
    TRANSIENT,
    ConnectionConfig,
    Page,
    TransportError,
    position_max,
)
from sync.connectors.failures import ABSENT
from sync.connectors.http import VendorHttp
from sync.connectors.paging import pages_follow

PAGE_SIZE = 100
EXTERNAL_ID_KEY = "ledgerbridge_id"  # metadata key that carries our external id
ENTITIES = ("customers", "invoices", "invoiceitems", "events")
WRITABLE = ("customers", "invoiceitems", "invoices")
SEARCHABLE = frozenset({"customers", "invoices"})
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def stripe_form_encode(values: Mapping[str, Any]) -> str:
    """Stripe's form encoding: nested mappings as `a[b]`, lists as `a[0]`, booleans as
    true/false, None as "" (Stripe's way to unset a field), Decimal as its plain string."""
    pairs: list[tuple[str, str]] = []

    def add(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for sub, item in value.items():
                add(f"{key}[{sub}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                add(f"{key}[{index}]", item)
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif value is None:
            pairs.append((key, ""))
        elif isinstance(value, Decimal):
            pairs.append((key, format(value, "f")))
        elif isinstance(value, float):
            raise TypeError(f"{key}: money and quantities go to Stripe as int or Decimal")
        else:
            pairs.append((key, str(value)))

    for key, value in values.items():
        add(str(key), value)
    return urlencode(pairs)


def _unix(since: str) -> int:
    if since.isdigit():
        return int(since)
    parsed = datetime.fromisoformat(since)
    if parsed.tzinfo is None:
        raise ValueError(f"since must carry a UTC offset: {since!r}")
    return int(parsed.timestamp())


def _iso(unix_seconds: Any) -> str | None:
    if not isinstance(unix_seconds, int):
        return None
    return datetime.fromtimestamp(unix_seconds, UTC).isoformat()


class StripeConnector:
    """Pulls billing objects; creates invoice items and invoices idempotently; finalizes."""

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        transport: Any = None,
        http: VendorHttp | None = None,
        http_options: Mapping[str, Any] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        credentials = config.credentials
        self.http = http or VendorHttp(
            config,
            auth=StripeKeyAuth(
                credentials.get("secret_key") or credentials.get("api_key", ""),
                api_version=credentials.get("api_version"),
            ),
            transport=transport,
            **(http_options or {}),
        )
        self.page_size = max(1, min(page_size, 100))

    def close(self) -> None:
        self.http.close()

    # -- reads -----------------------------------------------------------------------------
    def pull(
        self, *, entity: str, since: str | None = None, cursor: str | None = None
    ) -> Iterator[Page]:
        """Objects of `entity` created after `since` (ISO 8601 or unix seconds), newest first
        as Stripe lists them; cursor: the last object id (`starting_after`).

        Stripe lists filter by `created` only: changes to existing objects arrive through
        `entity="events"` (or webhooks). Pull position: the newest `created` seen, ISO 8601.
        """
        if entity not in ENTITIES:
            raise ValueError(f"unknown Stripe entity {entity!r}; known: {ENTITIES}")
        params: dict[str, Any] = {"limit": self.page_size}
        if since is not None:
            params["created[gt]"] = _unix(since)
        reached = since if since is None or not since.isdigit() else _iso(int(since))

        def fetch(after: str | None) -> Page:
            nonlocal reached
            query = {**params, **({"starting_after": after} if after else {})}
            body = self.http.request("GET", f"/v1/{entity}", params=query).json()
            records = body.get("data") or []
            for record in records:
                reached = position_max(reached, _iso(record.get("created")))
            more = bool(body.get("has_more")) and bool(records)
            return Page(
                records=records,
                next_cursor=records[-1]["id"] if more else None,
                position=reached,
            )

        return pages_follow(fetch, cursor=cursor)

    def get(self, *, record_type: str, record_id: str) -> dict[str, Any] | None:
        answer = self.http.request(
            "GET", f"/v1/{record_type}/{quote(record_id, safe='')}", not_found=ABSENT
        )
        return None if answer.status == 404 else answer.json()

    def get_by_external_id(self, *, record_type: str, external_id: str) -> dict[str, Any] | None:
        """The object whose metadata[ledgerbridge_id] is `external_id`, via Stripe Search
        (reconciliation and repair; the sandbox has no Search endpoint).

        Search is eventually consistent (about a minute behind writes): to resolve a lost
        write, repeat it with the same Idempotency-Key instead. Invoice items have no search:
        TransportError(TRANSIENT), so that the outbox retries the write with its key.
        """
        if record_type not in SEARCHABLE:
            # Not knowable here; a retry of the write with the same Idempotency-Key is safe
            # (Stripe replays the first answer), so the caller should simply retry.
            raise TransportError(
                kind=TRANSIENT,
                vendor_code="search_unsupported",
                message=f"Stripe cannot search {record_type}: retry the write "
                "with the same Idempotency-Key",
            )
        escaped = external_id.replace("\\", "\\\\").replace("'", "\\'")
        body = self.http.request(
            "GET",
            f"/v1/{record_type}/search",
            params={"query": f"metadata['{EXTERNAL_ID_KEY}']:'{escaped}'", "limit": 2},
        ).json()
        found = body.get("data") or []
        return found[0] if found else None

    # -- writes ----------------------------------------------------------------------------
    def post(self, path: str, *, values: Mapping[str, Any], idempotency_key: str) -> dict:
        """POST form-encoded `values` with an Idempotency-Key (required: every Stripe write
        must be safe to repeat)."""
        if not idempotency_key:
            raise ValueError("every Stripe write needs an idempotency key")
        return self.http.request(
            "POST",
            path,
            content=stripe_form_encode(values).encode(),
            headers={**FORM, "Idempotency-Key": idempotency_key},
        ).json()

    def upsert_by_external_id(
        self,
        *,
        record_type: str,
        external_id: str,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
        target_id: str | None = None,
    ) -> str:
        """Write the object tagged with `external_id` (metadata[ledgerbridge_id]); returns its
        Stripe id.

        Stripe has no upsert: without `target_id` (the id our cross-reference holds) this
        creates, with `target_id` it updates. Every POST carries an Idempotency-Key (the
        delivery's, else one derived from type, external id and body), so repeating a write
        whose answer was lost returns the first answer (Stripe keeps keys 24 h): that is how
        an INDETERMINATE Stripe write is resolved, not by search.
        """
        if record_type not in WRITABLE:
            raise ValueError(f"Stripe writes {WRITABLE}, not {record_type!r}")
        metadata = {**(body.get("metadata") or {}), EXTERNAL_ID_KEY: external_id}
        values = {**body, "metadata": metadata}
        # Stripe binds a key to one path and one set of parameters: a derived key carries a
        # digest of the body so that a changed record is a new request, a repeat the same.
        digest = hashlib.sha256(stripe_form_encode(values).encode()).hexdigest()[:16]
        key = idempotency_key or f"ledgerbridge-{record_type}-{external_id}-{digest}"
        path = f"/v1/{record_type}"
        if target_id:
            path += f"/{quote(target_id, safe='')}"
        return str(self.post(path, values=values, idempotency_key=key)["id"])

    def invoice_item_create(self, *, values: Mapping[str, Any], idempotency_key: str) -> dict:
        """POST /v1/invoiceitems (customer, currency, amount or price/quantity, invoice…)."""
        return self.post("/v1/invoiceitems", values=values, idempotency_key=idempotency_key)

    def invoice_create(self, *, values: Mapping[str, Any], idempotency_key: str) -> dict:
        """POST /v1/invoices (customer, collection_method, pending items…), a draft."""
        return self.post("/v1/invoices", values=values, idempotency_key=idempotency_key)

    def invoice_finalize(self, *, invoice_id: str, idempotency_key: str) -> dict:
        """POST /v1/invoices/{id}/finalize: the draft gets its number and becomes open."""
        return self.post(
            f"/v1/invoices/{quote(invoice_id, safe='')}/finalize",
            values={},
            idempotency_key=idempotency_key,
        )
