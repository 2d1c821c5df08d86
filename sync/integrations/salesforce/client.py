"""Salesforce REST (CRM): SOQL pulls with nextRecordsUrl paging, upsert by external id.

Vendor documentation followed:
- Query and queryMore (nextRecordsUrl, Sforce-Query-Options batchSize):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_query.htm
- Upsert by external id (PATCH …/sobjects/{type}/{field}/{value}: 201 created; 200 with a body
  from API 46.0 on, 204 before; 300 when the value matches several records):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm
- SOQL dateTime literals (unquoted, `2024-01-31T10:00:00Z`):
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_dateformats.htm
- OAuth 2.0 client credentials (token at {My Domain}/services/oauth2/token).

Credentials: `access_token`, or `client_id` + `client_secret` (+ `token_url`, default
`{base_url}/services/oauth2/token`); optional `api_version` (default 60.0).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from sync.connectors.auth import Auth, BearerAuth, OAuth2ClientCredentials
from sync.connectors.base import ConnectionConfig, Page, position_max
from sync.connectors.http import VendorHttp
from sync.connectors.paging import pages_follow

API_VERSION = "60.0"
EXTERNAL_ID_FIELD = "Ledgerbridge_Id__c"
BATCH_SIZE = 2000

# What a pull selects per sObject (SOQL has no SELECT *); override with `fields=`.
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "Account": (
        "Id",
        "Name",
        "AccountNumber",
        "Type",
        "Industry",
        "ParentId",
        "BillingStreet",
        "BillingCity",
        "BillingPostalCode",
        "BillingCountry",
        "CurrencyIsoCode",
        "ERP_Customer_Id__c",
        "Tax_Registration__c",
        "Credit_Status__c",
        EXTERNAL_ID_FIELD,
        "LastModifiedDate",
        "IsDeleted",
    ),
    "Opportunity": (
        "Id",
        "Name",
        "AccountId",
        "StageName",
        "CloseDate",
        "Amount",
        "CurrencyIsoCode",
        "Probability",
        "IsClosed",
        "IsWon",
        "Billing_Model__c",
        "Legal_Entity__c",
        EXTERNAL_ID_FIELD,
        "LastModifiedDate",
        "IsDeleted",
    ),
    "Contract": (
        "Id",
        "AccountId",
        "ContractNumber",
        "Status",
        "StartDate",
        "EndDate",
        "ContractTerm",
        "Opportunity__c",
        "Billing_Model__c",
        "Contract_Value__c",
        "CurrencyIsoCode",
        "SOW_Number__c",
        EXTERNAL_ID_FIELD,
        "LastModifiedDate",
        "IsDeleted",
    ),
}


def soql_datetime(value: str) -> str:
    """An ISO 8601 instant as a SOQL dateTime literal in UTC, cut to whole seconds.

    Cutting can only widen a `>` filter (a record of the same second is read again, which
    the idempotent pipeline absorbs); it never skips one.
    """
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"since must carry a UTC offset: {value!r}")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    """A quoted SOQL string literal (backslash escapes)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not an sObject or field name: {name!r}")
    return name


class SalesforceConnector:
    """Pulls sObjects incrementally and upserts them by an external-id field.

    Idempotent writes: `upsert_by_external_id` is a PATCH on the external id, so repeating it
    updates the same record. A lost answer is still INDETERMINATE (as for every write): resolve
    it with `get_by_external_id`.
    """

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        transport: Any = None,
        http: VendorHttp | None = None,
        http_options: Mapping[str, Any] | None = None,
        fields: Mapping[str, Sequence[str]] | None = None,
        external_id_field: str = EXTERNAL_ID_FIELD,
        key_fields: Mapping[str, str] | None = None,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        credentials = config.credentials
        self.api_version = credentials.get("api_version", API_VERSION).lstrip("v")
        self.http = http or VendorHttp(
            config, auth=self._auth(config), transport=transport, **(http_options or {})
        )
        self.fields = {**DEFAULT_FIELDS, **(fields or {})}
        self.external_id_field = _identifier(external_id_field)
        # sObjects written by another key than `external_id_field`: "Id" for records that
        # exist in the CRM already (an upsert on Id updates, and answers 404 when absent).
        self.key_fields = {t: _identifier(f) for t, f in (key_fields or {}).items()}
        self.batch_size = batch_size

    @staticmethod
    def _auth(config: ConnectionConfig) -> Auth:
        credentials = config.credentials
        if credentials.get("access_token"):
            return BearerAuth(credentials["access_token"])
        return OAuth2ClientCredentials(
            token_url=credentials.get("token_url")
            or config.base_url.rstrip("/") + "/services/oauth2/token",
            client_id=credentials.get("client_id", ""),
            client_secret=credentials.get("client_secret", ""),
        )

    def close(self) -> None:
        self.http.close()

    @property
    def _data(self) -> str:
        return f"/services/data/v{self.api_version}"

    # -- reads -----------------------------------------------------------------------------
    def pull(
        self, *, entity: str, since: str | None = None, cursor: str | None = None
    ) -> Iterator[Page]:
        """Records of sObject `entity` modified after `since` (all when None), page by page.

        `cursor` is a `nextRecordsUrl` from an earlier page. Pull position: the highest
        LastModifiedDate seen (starting from `since`).
        """
        fields = self.fields.get(entity)
        if not fields:
            raise ValueError(f"no field list for sObject {entity!r}; pass fields=")
        # Identifiers are checked by _identifier and literals escaped: no injection.
        soql = f"SELECT {', '.join(map(_identifier, fields))} FROM {_identifier(entity)}"  # noqa: S608
        if since is not None:
            soql += f" WHERE LastModifiedDate > {soql_datetime(since)}"
        return self.query(soql, cursor=cursor, since=since)

    def query(
        self, soql: str, *, cursor: str | None = None, since: str | None = None
    ) -> Iterator[Page]:
        """Any SOQL query, followed through nextRecordsUrl to its last batch."""
        reached = since
        options = {"Sforce-Query-Options": f"batchSize={self.batch_size}"}

        def fetch(after: str | None) -> Page:
            nonlocal reached
            if after is None:
                answer = self.http.request(
                    "GET", f"{self._data}/query", params={"q": soql}, headers=options
                )
            else:
                answer = self.http.request("GET", after, headers=options)
            body = answer.json()
            records = body.get("records", [])
            for record in records:
                reached = position_max(reached, record.get("LastModifiedDate"))
            next_url = None if body.get("done", True) else body.get("nextRecordsUrl")
            return Page(records=records, next_cursor=next_url, position=reached)

        return pages_follow(fetch, cursor=cursor)

    def get_by_external_id(self, *, record_type: str, external_id: str) -> dict[str, Any] | None:
        """The record whose external-id field equals `external_id` (with "id" = its Id), or None.

        A SOQL query rather than GET …/{field}/{value}: an unknown type or field then answers
        400 INVALID_FIELD (configuration) instead of a 404 indistinguishable from "absent".
        """
        key = self._key_field(record_type)
        fields = self.fields.get(record_type) or ("Id", key)
        names = ", ".join(map(_identifier, fields))
        select = f"SELECT {names} FROM {_identifier(record_type)}"  # noqa: S608 - checked names
        soql = f"{select} WHERE {key} = {soql_string(external_id)} LIMIT 2"
        records = self.http.request("GET", f"{self._data}/query", params={"q": soql}).json()
        found = records.get("records", [])
        if not found:
            return None
        # TargetConnector contract: the target id under "id" (Salesforce spells it "Id").
        return {**found[0], "id": found[0].get("Id")}

    def _key_field(self, record_type: str) -> str:
        return self.key_fields.get(record_type, self.external_id_field)

    # -- writes ----------------------------------------------------------------------------
    def upsert_by_external_id(
        self,
        *,
        record_type: str,
        external_id: str,
        body: Mapping[str, Any],
        idempotency_key: str | None = None,
    ) -> str:
        """Create or update the record keyed by `external_id`; returns its Salesforce Id.

        `idempotency_key` is not sent: Salesforce honours none, the external id is the key.
        Raises TransportError (PERMANENT with vendor_code MULTIPLE_CHOICES when the value
        matches several records; INDETERMINATE when the answer was lost).
        """
        key = self._key_field(record_type)
        path = (
            f"{self._data}/sobjects/{_identifier(record_type)}/{key}/{quote(external_id, safe='')}"
        )
        # The URL names the record; the same field in the body is an error at Salesforce.
        payload = {
            k: v for k, v in body.items() if k.lower() not in {key.lower(), "id", "attributes"}
        }
        answer = self.http.request("PATCH", path, json=payload)
        result = answer.json() if answer.content else None
        if isinstance(result, dict) and result.get("id"):
            return str(result["id"])
        # 204 (API < 46.0, and the sandbox): no body; read the id back.
        found = self.get_by_external_id(record_type=record_type, external_id=external_id)
        if found is None or not found.get("Id"):
            raise ValueError(f"{record_type} {external_id} upserted but not found")
        return str(found["Id"])
