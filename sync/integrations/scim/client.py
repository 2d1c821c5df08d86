"""SCIM 2.0 (HR): Users with the enterprise extension, incremental by meta.lastModified.

Vendor documentation followed: RFC 7644 (https://www.rfc-editor.org/rfc/rfc7644) §3.4.2
(filter `meta.lastModified gt "…"`, `startIndex`/`count` paging, ListResponse with
totalResults/itemsPerPage), §3.12 (errors); RFC 7643 §4.3 for the enterprise User extension
(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`: employeeNumber, costCenter,
manager…). Read-only: the HR system owns the worker master.

Credentials: `access_token` (bearer). Base URL is the SCIM root (…/scim/v2).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sync.connectors.auth import BearerAuth
from sync.connectors.base import ConnectionConfig, Page, position_max
from sync.connectors.http import VendorHttp
from sync.connectors.paging import int_cursor, pages_follow

ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PAGE_SIZE = 500
ENTITIES = ("Users",)


def scim_string(value: str) -> str:
    """A SCIM filter string literal (JSON string rules, RFC 7644 §3.4.2.2)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class ScimConnector:
    """Pulls Users (core + enterprise extension) from a SCIM 2.0 service provider."""

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        transport: Any = None,
        http: VendorHttp | None = None,
        http_options: Mapping[str, Any] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.http = http or VendorHttp(
            config,
            auth=BearerAuth(config.credentials.get("access_token", "")),
            transport=transport,
            default_headers={"Accept": "application/scim+json"},
            **(http_options or {}),
        )
        self.page_size = page_size

    def close(self) -> None:
        self.http.close()

    def pull(
        self, *, entity: str = "Users", since: str | None = None, cursor: str | None = None
    ) -> Iterator[Page]:
        """Users whose meta.lastModified is after `since`, page by page (cursor: startIndex).

        SCIM promises no order without sortBy (which providers often lack); the filter only
        lets records in as they change, so a change while paging reads a user twice at worst.
        """
        if entity not in ENTITIES:
            raise ValueError(f"SCIM pulls {ENTITIES}, not {entity!r}")
        params: dict[str, Any] = {"count": self.page_size}
        if since is not None:
            params["filter"] = f"meta.lastModified gt {scim_string(since)}"
        reached = since

        def fetch(after: str | None) -> Page:
            nonlocal reached
            start = int_cursor(after, default=1)
            body = self.http.request("GET", entity, params={**params, "startIndex": start}).json()
            records = body.get("Resources") or []
            for record in records:
                reached = position_max(reached, (record.get("meta") or {}).get("lastModified"))
            total = int(body.get("totalResults") or 0)
            served = int(body.get("itemsPerPage") or len(records))
            following = start + served
            more = served > 0 and following <= total
            return Page(
                records=records, next_cursor=str(following) if more else None, position=reached
            )

        return pages_follow(fetch, cursor=cursor)

    def get_by_external_id(
        self, *, record_type: str = "Users", external_id: str
    ) -> dict[str, Any] | None:
        """The user whose externalId (the HR worker key) is `external_id`, or None."""
        body = self.http.request(
            "GET", record_type, params={"filter": f"externalId eq {scim_string(external_id)}"}
        ).json()
        found = body.get("Resources") or []
        return found[0] if found else None
