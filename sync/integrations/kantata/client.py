"""Kantata (Mavenlink) REST v1 (PSA): side-loaded lists, page/per_page paging, workspace writes.

Vendor documentation followed (https://developer.kantata.com/, formerly
https://developer.mavenlink.com/):
- List answers `{count, results: [{key, id}], <key>: {id: record}, meta: {page_count, …}}`;
  `page` and `per_page` (at most 200); `updated_after`; `order=id:asc`.
- Time entries and expenses filtered by `approved=true`; `workspace_id` scoping.
- Errors `{"errors": [{"type", "message", "field"?}]}`; over the rate limit a 429 without
  Retry-After (http.py backs off by its default).
- Kantata honours no idempotency key: a workspace is looked up by `external_reference` before
  it is created.

The change feed (`change_events?since=<cursor>`) is the sandbox's stand-in for Kantata's
webhooks/event delivery; a cursor older than the feed's retention answers 410
`cursor_expired` (TransportError PERMANENT, vendor_code "cursor_expired"): resync with
`updated_after` and follow the feed again.

Credentials: `access_token` (OAuth 2.0 bearer token). Base URL ends in `/api/v1`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sync.connectors.auth import BearerAuth
from sync.connectors.base import PERMANENT, ConnectionConfig, Page, position_max
from sync.connectors.http import VendorHttp
from sync.connectors.paging import int_cursor, pages_follow

MAX_PER_PAGE = 200
ENTITIES = ("workspaces", "stories", "users", "assignments", "time_entries", "expenses")
APPROVABLE = frozenset({"time_entries", "expenses"})
CHANGE_EVENTS = "change_events"
CURSOR_EXPIRED = "cursor_expired"
WRITABLE = {"workspaces": "workspace", "stories": "story"}  # record_type -> body wrapper


class KantataConnector:
    """Pulls PSA records and change events; upserts workspaces by external_reference."""

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        transport: Any = None,
        http: VendorHttp | None = None,
        http_options: Mapping[str, Any] | None = None,
        per_page: int = MAX_PER_PAGE,
        approved_only: bool = True,
    ) -> None:
        self.http = http or VendorHttp(
            config,
            auth=BearerAuth(config.credentials.get("access_token", "")),
            transport=transport,
            **(http_options or {}),
        )
        self.per_page = max(1, min(per_page, MAX_PER_PAGE))
        self.approved_only = approved_only

    def close(self) -> None:
        self.http.close()

    # -- reads -----------------------------------------------------------------------------
    def pull(
        self,
        *,
        entity: str,
        since: str | None = None,
        cursor: str | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Iterator[Page]:
        """Records of `entity` updated after `since`, oldest id first, page by page.

        Time entries and expenses are the approved ones unless `approved_only=False`.
        Ordering by id with `updated_after` means a record changed while paging can only be
        read twice, never skipped. `cursor` is a page number. `entity="change_events"` follows
        the change feed instead (`since`/`cursor` = a feed position).
        """
        if entity == CHANGE_EVENTS:
            return self.change_events(cursor=cursor or since)
        if entity not in ENTITIES:
            raise ValueError(f"unknown Kantata entity {entity!r}; known: {ENTITIES}")
        params: dict[str, Any] = {"per_page": self.per_page, "order": "id:asc", **(filters or {})}
        if since is not None:
            params["updated_after"] = since
        if entity in APPROVABLE and self.approved_only:
            params.setdefault("approved", "true")
        reached = since

        def fetch(after: str | None) -> Page:
            nonlocal reached
            page = int_cursor(after, default=1)
            answer = self.http.request("GET", f"{entity}.json", params={**params, "page": page})
            body = answer.json()
            records = _side_loaded(body, entity)
            for record in records:
                reached = position_max(reached, record.get("updated_at"))
            page_count = int((body.get("meta") or {}).get("page_count") or 0)
            more = page < page_count and len(records) > 0
            return Page(
                records=records, next_cursor=str(page + 1) if more else None, position=reached
            )

        return pages_follow(fetch, cursor=cursor)

    def change_events(self, *, cursor: str | None = None) -> Iterator[Page]:
        """The change feed after `cursor` (None: from the oldest kept event).

        Each page's `position` is the feed position to resume from next time.
        """

        def fetch(after: str | None) -> Page:
            params: dict[str, Any] = {"per_page": self.per_page}
            if after is not None:
                params["since"] = after
            body = self.http.request("GET", "change_events.json", params=params).json()
            meta = body.get("meta") or {}
            following = meta.get("next_cursor")
            more = bool(meta.get("has_more")) and following not in (None, after)
            return Page(
                records=_side_loaded(body, CHANGE_EVENTS),
                next_cursor=str(following) if more else None,
                position=None if following is None else str(following),
            )

        return pages_follow(fetch, cursor=cursor)

    def get_by_external_id(self, *, record_type: str, external_id: str) -> dict[str, Any] | None:
        """The workspace (or story) whose external_reference is `external_id`, or None."""
        self._writable(record_type)
        body = self.http.request(
            "GET", f"{record_type}.json", params={"external_reference": external_id}
        ).json()
        found = _side_loaded(body, record_type)
        return found[0] if found else None

    # -- writes ----------------------------------------------------------------------------
    def upsert_by_external_id(
        self,
        *,
        record_type: str,
        external_id: str,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> str:
        """Update the workspace (or story) with this external_reference, or create it; returns
        its id.

        Not atomic at Kantata (lookup, then create): two concurrent first deliveries of the
        same record could both create; the sandbox refuses the second with 422 on the unique
        external_reference. A lost create answer is INDETERMINATE: call this again (it looks up
        first). `idempotency_key` is not sent (Kantata has none).
        """
        wrapper = self._writable(record_type)
        attributes = {**body, "external_reference": external_id}
        existing = self.get_by_external_id(record_type=record_type, external_id=external_id)
        if existing is not None:
            answer = self.http.request(
                "PUT",
                f"{record_type}/{existing['id']}.json",
                json={wrapper: attributes},
                not_found=PERMANENT,
            )
        else:
            answer = self.http.request("POST", f"{record_type}.json", json={wrapper: attributes})
        written = _side_loaded(answer.json(), record_type)
        if not written:
            raise ValueError(f"Kantata answered the {record_type} write without the record")
        return str(written[0]["id"])

    @staticmethod
    def _writable(record_type: str) -> str:
        if record_type not in WRITABLE:
            raise ValueError(f"Kantata writes only {sorted(WRITABLE)}, not {record_type!r}")
        return WRITABLE[record_type]


def _side_loaded(body: Any, key: str) -> list[dict[str, Any]]:
    """The records of `key` in the order of `results` (the side-loaded map is unordered)."""
    if not isinstance(body, dict):
        return []
    by_id = body.get(key) or {}
    return [
        by_id[r["id"]]
        for r in body.get("results", [])
        if r.get("key") == key and r.get("id") in by_id
    ]
