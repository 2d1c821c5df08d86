"""NetSuite REST web services (ERP): record service upserts by external id, SuiteQL pulls.

Vendor documentation followed (SuiteTalk REST Web Services,
https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/chapter_1540391670.html):
- create: POST /services/rest/record/v1/{type} answers 204 with the new record's `Location`;
- upsert: PUT /services/rest/record/v1/{type}/eid:{externalId} (create or update, 204);
- read: GET …/{type}/eid:{externalId} (404 NONEXISTENT_ID when absent);
- SuiteQL: POST /services/rest/query/v1/suiteql?limit&offset, header `Prefer: transient`,
  body {"q": …}; answer {items, hasMore, offset, count, totalResults}; a read, so it is
  retried and a lost answer is transient (`idempotent=True`);
- errors {"type", "title", "status", "o:errorDetails": [{"detail", "o:errorCode",
  "o:errorPath"}]}: the first `o:errorCode` is the TransportError's vendor_code;
- `X-NetSuite-Idempotency-Key` only with `Prefer: respond-async`: synchronous calls rely on
  the eid: upsert being idempotent by itself.

Credentials: token-based authentication (`account_id`, `consumer_key`, `consumer_secret`,
`token_id`, `token_secret`), else OAuth 2.0 client credentials (`client_id`, `client_secret`,
`token_url`), else a static `access_token`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sync.connectors.auth import Auth, BearerAuth, NetSuiteTokenAuth, OAuth2ClientCredentials
from sync.connectors.base import INDETERMINATE, ConnectionConfig, Page, TransportError
from sync.connectors.failures import ABSENT
from sync.connectors.http import VendorHttp
from sync.connectors.paging import int_cursor, pages_follow

RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
PAGE_SIZE = 1000
# SuiteQL renders dates in the user's date preference; this column carries the exact instant.
POSITION_COLUMN = "lastmodified_at"
POSITION_FORMAT = "YYYY-MM-DD HH24:MI:SS"

# What a pull selects per record type (SuiteQL column names); override with `columns=`.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "customer": (
        "id",
        "externalid",
        "companyname",
        "entityid",
        "subsidiary",
        "currency",
        "isinactive",
        "vatregnumber",
        "creditlimit",
    ),
    "employee": (
        "id",
        "externalid",
        "firstname",
        "lastname",
        "entityid",
        "email",
        "subsidiary",
        "department",
        "supervisor",
        "isinactive",
        "title",
    ),
    "job": (
        "id",
        "externalid",
        "companyname",
        "entityid",
        "parent",
        "subsidiary",
        "currency",
        "entitystatus",
        "startdate",
        "projectedenddate",
        "isinactive",
    ),
    "timeBill": (
        "id",
        "externalid",
        "employee",
        "customer",
        "casetaskevent",
        "trandate",
        "hours",
        "rate",
        "isbillable",
        "approvalstatus",
        "memo",
    ),
    "invoice": (
        "id",
        "externalid",
        "tranid",
        "entity",
        "job",
        "trandate",
        "duedate",
        "currency",
        "status",
        "total",
        "amountremaining",
        "otherrefnum",
    ),
    "customerPayment": (
        "id",
        "externalid",
        "tranid",
        "customer",
        "trandate",
        "payment",
        "currency",
        "memo",
    ),
    "accountingPeriod": ("id", "periodname", "startdate", "enddate", "closed"),
}


def suiteql_timestamp(value: str) -> str:
    """A pull position ("YYYY-MM-DD HH:MM:SS", or ISO 8601 with an offset) as a TO_TIMESTAMP."""
    text = value
    if "T" in value:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC)
        text = parsed.strftime("%Y-%m-%d %H:%M:%S")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", text):
        raise ValueError(f"not a NetSuite pull position: {value!r}")
    return f"TO_TIMESTAMP('{text}', '{POSITION_FORMAT}')"


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
        raise ValueError(f"not a NetSuite record type or column: {name!r}")
    return name


def record_id_from_location(location: str | None) -> str | None:
    """The internal id at the end of a `Location` header (…/record/v1/customer/42)."""
    if not location:
        return None
    tail = location.rstrip("/").rsplit("/", 1)[-1]
    return tail if tail.isdigit() else None


class NetSuiteConnector:
    """Upserts ERP records by externalId and pulls them incrementally with SuiteQL."""

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        transport: Any = None,
        http: VendorHttp | None = None,
        http_options: Mapping[str, Any] | None = None,
        columns: Mapping[str, Sequence[str]] | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.http = http or VendorHttp(
            config, auth=self._auth(config), transport=transport, **(http_options or {})
        )
        self.columns = {**DEFAULT_COLUMNS, **(columns or {})}
        self.page_size = page_size

    @staticmethod
    def _auth(config: ConnectionConfig) -> Auth:
        c = config.credentials
        if c.get("token_id"):
            return NetSuiteTokenAuth(
                account=c.get("account_id", ""),
                consumer_key=c.get("consumer_key", ""),
                consumer_secret=c.get("consumer_secret", ""),
                token_id=c.get("token_id", ""),
                token_secret=c.get("token_secret", ""),
            )
        if c.get("client_id"):
            return OAuth2ClientCredentials(
                token_url=c.get("token_url")
                or config.base_url.rstrip("/") + "/services/rest/auth/oauth2/v1/token",
                client_id=c["client_id"],
                client_secret=c.get("client_secret", ""),
            )
        return BearerAuth(c.get("access_token", ""))

    def close(self) -> None:
        self.http.close()

    # -- reads -----------------------------------------------------------------------------
    def suiteql(
        self,
        query: str,
        *,
        cursor: str | None = None,
        position_column: str | None = None,
        since: str | None = None,
    ) -> Iterator[Page]:
        """Any SuiteQL query, page by page (cursor: the offset)."""
        reached = since

        def fetch(after: str | None) -> Page:
            nonlocal reached
            offset = int_cursor(after, default=0)
            body = self.http.request(
                "POST",
                SUITEQL,
                params={"limit": self.page_size, "offset": offset},
                json={"q": query},
                headers={"Prefer": "transient"},
                idempotent=True,
            ).json()
            items = [
                {k: v for k, v in item.items() if k != "links"} for item in body.get("items") or []
            ]
            if position_column:
                # A fixed-width "YYYY-MM-DD HH:MM:SS": string order is time order.
                stamps = [i[position_column] for i in items if i.get(position_column)]
                reached = max([*stamps, *([reached] if reached else [])], default=None)
            more = bool(body.get("hasMore")) and len(items) > 0
            return Page(
                records=items,
                next_cursor=str(offset + len(items)) if more else None,
                position=reached,
            )

        return pages_follow(fetch, cursor=cursor)

    def pull(
        self, *, entity: str, since: str | None = None, cursor: str | None = None
    ) -> Iterator[Page]:
        """Records of type `entity` modified after `since`, in id order (offset paging only
        lets changed records in, so a change while paging reads a row twice at worst).

        Pull position: the highest lastmodifieddate seen, "YYYY-MM-DD HH:MM:SS" in the account's
        time zone (SuiteQL's); pass it back unchanged as `since`.
        """
        columns = self.columns.get(entity)
        if not columns:
            raise ValueError(f"no column list for NetSuite record type {entity!r}; pass columns=")
        items = ", ".join(map(_identifier, columns))
        query = (
            f"SELECT {items}, TO_CHAR(lastmodifieddate, '{POSITION_FORMAT}') AS "  # noqa: S608
            f"{POSITION_COLUMN} FROM {_identifier(entity)}"
        )
        if since is not None:
            query += f" WHERE lastmodifieddate > {suiteql_timestamp(since)}"
        query += " ORDER BY id"
        return self.suiteql(query, cursor=cursor, position_column=POSITION_COLUMN, since=since)

    def get_by_external_id(self, *, record_type: str, external_id: str) -> dict[str, Any] | None:
        """The record with this externalId, or None (a 404 NONEXISTENT_ID)."""
        answer = self.http.request(
            "GET", self._eid_path(record_type, external_id), not_found=ABSENT
        )
        return None if answer.status == 404 else answer.json()

    # -- writes ----------------------------------------------------------------------------
    def upsert_by_external_id(
        self,
        *,
        record_type: str,
        external_id: str,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> str:
        """Create or update the record keyed by externalId; returns its internal id.

        Idempotent at NetSuite (PUT on eid:). `idempotency_key` is not sent: NetSuite accepts
        it only on asynchronous requests. Raises TransportError (PERMANENT with the
        o:errorCode, e.g. USER_ERROR / INVALID_CONTENT, for a record NetSuite refuses).
        """
        payload = {k: v for k, v in body.items() if k not in {"externalId", "id", "links"}}
        answer = self.http.request("PUT", self._eid_path(record_type, external_id), json=payload)
        record_id = record_id_from_location(answer.headers.get("location"))
        if record_id is not None:
            return record_id
        found = self.get_by_external_id(record_type=record_type, external_id=external_id)
        if found is None:
            raise TransportError(
                kind=INDETERMINATE,
                status=answer.status,
                message=f"{record_type} eid:{external_id} written but not found",
            )
        return str(found["id"])

    def create(self, *, record_type: str, body: Mapping[str, Any]) -> str:
        """POST a new record; returns the id from `Location`. Not idempotent: prefer
        `upsert_by_external_id` whenever the record has an external id."""
        answer = self.http.request("POST", f"{RECORD}/{_identifier(record_type)}", json=body)
        record_id = record_id_from_location(answer.headers.get("location"))
        if record_id is None:
            raise TransportError(
                kind=INDETERMINATE,
                status=answer.status,
                message=f"{record_type} created without a Location header",
            )
        return record_id

    @staticmethod
    def _eid_path(record_type: str, external_id: str) -> str:
        return f"{RECORD}/{_identifier(record_type)}/eid:{quote(external_id, safe='')}"
