"""Salesforce REST handlers: OAuth token, SOQL query with nextRecordsUrl paging, sObject writes.

Follows the REST API Developer Guide
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/) and the OAuth 2.0
client-credentials and username-password flows
(https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_flows.htm).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from typing import Any

import orjson
from django.db import IntegrityError, transaction

from sandbox import storage
from sandbox.core.auth import bearer_token, token_issue, token_subject
from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.router import SANDBOX_DB
from sandbox.salesforce import records
from sandbox.salesforce.schema import (
    BATCH_SIZE,
    EXTERNAL_ID_FIELD,
    MIN_BATCH_SIZE,
    SYSTEM,
    ObjectSpec,
    object_spec,
    sf_id,
    sf_id_parse,
)
from sandbox.salesforce.soql import SoqlError, soql_parse

CLIENT_ID = "sandbox-salesforce-client-id"
CLIENT_SECRET = "sandbox-salesforce-client-secret"  # noqa: S105 - public test credential
USERNAME = "integration@ledgerbridge.sandbox"
PASSWORD = "sandbox-password"  # noqa: S105 - public test credential
SECURITY_TOKEN = "sandboxtoken"  # noqa: S105 - public test credential
API_VERSION = "60.0"
MIN_VERSION, MAX_VERSION = 31.0, 64.0
ORG_ID = "00D000000000001AAA"
USER_ID = "005000000000001AAA"
LOCATOR_PREFIX = "01g"


def credentials(base_url: str) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "token_url": base_url + "/services/oauth2/token",
        "api_version": API_VERSION,
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "username": USERNAME,
        "password": PASSWORD,
        "security_token": SECURITY_TOKEN,
    }


def authenticate(request: Request) -> None:
    token = bearer_token(request)
    if token is None or token_subject(system=SYSTEM, token=token) is None:
        raise SandboxError(401, "INVALID_SESSION_ID", "Session expired or invalid")


# -- OAuth -------------------------------------------------------------------------------------
def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return Response.json({"error": error, "error_description": description}, status=status)


def oauth_token(request: Request) -> Response:
    """POST /services/oauth2/token (form-encoded). Errors use OAuth's shape, not the REST one."""
    form = request.form()
    grant = form.get("grant_type", "")
    if grant not in {"client_credentials", "password"}:
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    if not hmac.compare_digest(form.get("client_id", ""), CLIENT_ID):
        return _oauth_error("invalid_client_id", "client identifier invalid")
    if not hmac.compare_digest(form.get("client_secret", ""), CLIENT_SECRET):
        return _oauth_error("invalid_client", "invalid client credentials")
    if grant == "password":
        password = form.get("password", "")
        if form.get("username") != USERNAME or password not in {
            PASSWORD,
            PASSWORD + SECURITY_TOKEN,
        }:
            return _oauth_error("invalid_grant", "authentication failure")
    issued_at = str(int(time.time() * 1000))
    return Response.json(
        {
            "access_token": token_issue(system=SYSTEM, subject=USER_ID),
            "instance_url": request.base_url,
            "id": f"{request.base_url}/id/{ORG_ID}/{USER_ID}",
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": base64.b64encode(issued_at.encode()).decode(),
        }
    )


# -- versions and limits -----------------------------------------------------------------------
def _version(version: str) -> str:
    number = float(version[1:])
    if not MIN_VERSION <= number <= MAX_VERSION:
        raise SandboxError(404, "NOT_FOUND", "The requested resource does not exist")
    return version


def versions_list(request: Request) -> Response:
    versions = [f"{v}.0" for v in range(int(MIN_VERSION), int(MAX_VERSION) + 1)]
    return Response.json(
        [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in versions]
    )


def limits_get(request: Request, version: str) -> Response:
    _version(version)
    used, limit = request.state.get("usage", (0, None))
    maximum = limit if limit is not None else 0
    return Response.json(
        {"DailyApiRequests": {"Max": maximum, "Remaining": max(maximum - used, 0)}}
    )


# -- query -------------------------------------------------------------------------------------
def _parse(text: str):
    try:
        return soql_parse(text)
    except SoqlError as exc:
        raise SandboxError(400, exc.code, exc.message) from exc


def _batch_size(request: Request) -> int:
    options = request.header("sforce-query-options") or ""
    for option in options.split(","):
        name, _, value = option.strip().partition("=")
        if name.lower() == "batchsize" and value.isascii() and value.isdigit():
            return max(MIN_BATCH_SIZE, min(BATCH_SIZE, int(value)))
    return BATCH_SIZE


def query(request: Request, version: str) -> Response:
    """GET /services/data/vNN.N/query?q=SOQL: the first batch and a nextRecordsUrl."""
    _version(version)
    text = request.param("q")
    if not text:
        raise SandboxError(400, "MALFORMED_QUERY", "A query string has to be specified")
    parsed = _parse(text)
    queryset = records.soql_queryset(parsed)
    total = queryset.count()
    if parsed.offset:
        total = max(total - parsed.offset, 0)
    if parsed.limit is not None:
        total = min(total, parsed.limit)
    if parsed.count_only:
        return Response.json({"totalSize": total, "done": True, "records": []})
    state = {"q": text, "served": 0, "total": total, "after": None, "batch": _batch_size(request)}
    return _batch(request, version, parsed, queryset, state)


def query_more(request: Request, version: str, locator: str) -> Response:
    """GET /services/data/vNN.N/query/<locator>: the next batch."""
    _version(version)
    state = _locator_decode(locator)
    parsed = _parse(state["q"])
    return _batch(request, version, parsed, records.soql_queryset(parsed), state)


def _batch(request, version, parsed, queryset, state) -> Response:
    served, total, size = state["served"], state["total"], state["batch"]
    take = max(min(size, total - served), 0)
    keyset = not parsed.order_by
    if keyset:
        # Id order: continue after the last id served (index range scan, no OFFSET).
        if state["after"] is not None:
            queryset = queryset.filter(pk__gt=state["after"])
        if served == 0 and parsed.offset:
            queryset = queryset[parsed.offset :]
        rows = list(queryset[:take]) if take else []
    else:
        start = (parsed.offset or 0) + served
        rows = list(queryset[start : start + take]) if take else []
    fields = parsed.fields
    rendered = [
        request.drift(
            records.record_render(obj=parsed.obj, record=row, fields=fields, version=version)
        )
        for row in rows
    ]
    served += len(rows)
    done = served >= total or len(rows) < take or not rows
    payload: dict[str, Any] = {"totalSize": total, "done": done, "records": rendered}
    if not done:
        next_state = {**state, "served": served, "after": rows[-1].pk if keyset else None}
        payload["nextRecordsUrl"] = (
            f"/services/data/{version}/query/{_locator_encode(next_state)}-{served}"
        )
    return Response.json(payload)


def _locator_encode(state: dict[str, Any]) -> str:
    return LOCATOR_PREFIX + base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")


def _locator_decode(locator: str) -> dict[str, Any]:
    invalid = SandboxError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    body, _, _served = locator.rpartition("-")
    if not body.startswith(LOCATOR_PREFIX):
        raise invalid
    encoded = body[len(LOCATOR_PREFIX) :]
    try:
        state = orjson.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (binascii.Error, ValueError):
        raise invalid from None
    if not isinstance(state, dict) or not {"q", "served", "total", "after", "batch"} <= set(state):
        raise invalid
    return state


# -- sObject rows ------------------------------------------------------------------------------
def _object(name: str) -> ObjectSpec:
    obj = object_spec(name)
    if obj is None:
        raise SandboxError(404, "NOT_FOUND", "The requested resource does not exist")
    return obj


def _not_found() -> SandboxError:
    return SandboxError(404, "NOT_FOUND", "The requested resource does not exist")


def sobject_get(request: Request, version: str, sobject: str, record_id: str) -> Response:
    _version(version)
    obj = _object(sobject)
    pk = sf_id_parse(record_id, expected=obj)
    record = storage.record_get(system=SYSTEM, object_type=obj.name, record_id=pk) if pk else None
    if record is None:
        raise _not_found()
    return Response.json(
        request.drift(records.record_render(obj=obj, record=record, fields=None, version=version))
    )


def _find_by_external_id(obj: ObjectSpec, field_name: str, value: str):
    """The records whose external-id field has this value (a list: duplicates are possible)."""
    if field_name == EXTERNAL_ID_FIELD:
        found = storage.record_get_by_external_id(
            system=SYSTEM, object_type=obj.name, external_id=value
        )
        return [found] if found else []
    queryset = storage.record_queryset(system=SYSTEM, object_type=obj.name)
    return list(queryset.alias(ext=storage.data_text(field_name)).filter(ext=value)[:2])


def _external_field(obj: ObjectSpec, name: str) -> str:
    spec = obj.field(name)
    if spec is None or not spec.external_id:
        raise SandboxError(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {name}",
        )
    return spec.name


def sobject_get_by_external_id(
    request: Request, version: str, sobject: str, field: str, value: str
) -> Response:
    _version(version)
    obj = _object(sobject)
    if field.lower() == "id":
        return sobject_get(request, version, sobject, value)
    found = _find_by_external_id(obj, _external_field(obj, field), value)
    if not found:
        raise _not_found()
    return Response.json(
        request.drift(records.record_render(obj=obj, record=found[0], fields=None, version=version))
    )


def _write_columns(obj: ObjectSpec, data: dict[str, Any]) -> dict[str, Any]:
    return records.columns_for(obj=obj, data=data)


def _apply(obj: ObjectSpec, record, cleaned: dict[str, Any]) -> None:
    changes = {**cleaned, **records.derived_fields(obj=obj, data=cleaned)}
    changes = {k: v for k, v in changes.items() if v is not None}
    removed = [k for k, v in cleaned.items() if v is None]
    merged = {**{k: v for k, v in record.data.items() if k not in removed}, **changes}
    record.data = {k: v for k, v in record.data.items() if k not in removed}
    storage.record_update(record=record, changes=changes, **_write_columns(obj, merged))


def _create(obj: ObjectSpec, cleaned: dict[str, Any], external_id: str | None):
    data = {k: v for k, v in cleaned.items() if v is not None}
    data.update(records.derived_fields(obj=obj, data=data))
    data.pop(EXTERNAL_ID_FIELD, None)
    with transaction.atomic(using=SANDBOX_DB):
        record = storage.record_create(
            system=SYSTEM,
            object_type=obj.name,
            data=data,
            external_id=external_id,
            **_write_columns(obj, data),
        )
        if obj.name == "Contract":
            record.data["ContractNumber"] = f"{record.pk:08d}"
            record.save(using=SANDBOX_DB, update_fields=["data"])
    return record


def sobject_upsert(
    request: Request, version: str, sobject: str, field: str, value: str
) -> Response:
    """PATCH /sobjects/{type}/{externalIdField}/{value}: 201 created, 204 updated."""
    _version(version)
    obj = _object(sobject)
    body = request.json()
    if field.lower() == "id":
        pk = sf_id_parse(value, expected=obj)
        record = (
            storage.record_get(system=SYSTEM, object_type=obj.name, record_id=pk) if pk else None
        )
        if record is None:
            raise _not_found()
        _apply(obj, record, records.body_clean(obj=obj, body=body, creating=False))
        return Response.empty(204)
    field_name = _external_field(obj, field)
    if isinstance(body, dict):
        # The URL names the record; the same field in the body is ignored, as Salesforce does.
        body = {k: v for k, v in body.items() if k.lower() != field_name.lower()}
    with transaction.atomic(using=SANDBOX_DB):
        found = _find_by_external_id(obj, field_name, value)
        if len(found) > 1:
            raise SandboxError(
                300,
                "MULTIPLE_CHOICES",
                f"More than one record found for external id field {field_name} with value {value}",
            )
        if found:
            _apply(obj, found[0], records.body_clean(obj=obj, body=body, creating=False))
            return Response.empty(204)
        cleaned = records.body_clean(obj=obj, body=body, creating=True)
        if field_name == EXTERNAL_ID_FIELD:
            external_id = value
        else:
            cleaned[field_name] = value
            external_id = None
        try:
            record = _create(obj, cleaned, external_id)
        except IntegrityError:
            # A concurrent upsert created it first: this one becomes the update.
            found = _find_by_external_id(obj, field_name, value)
            if not found:
                raise
            _apply(obj, found[0], records.body_clean(obj=obj, body=body, creating=False))
            return Response.empty(204)
    return Response.json(
        {"id": sf_id(obj, record.pk), "success": True, "errors": [], "created": True}, status=201
    )


def sobject_create(request: Request, version: str, sobject: str) -> Response:
    """POST /sobjects/{type}: 201 with the new id."""
    _version(version)
    obj = _object(sobject)
    cleaned = records.body_clean(obj=obj, body=request.json(), creating=True)
    external_id = cleaned.get(EXTERNAL_ID_FIELD)
    try:
        record = _create(obj, cleaned, external_id)
    except IntegrityError as exc:
        existing = storage.record_get_by_external_id(
            system=SYSTEM, object_type=obj.name, external_id=external_id or ""
        )
        duplicate = sf_id(obj, existing.pk) if existing else "unknown"
        raise SandboxError(
            400,
            "DUPLICATE_VALUE",
            f"duplicate value found: {EXTERNAL_ID_FIELD} duplicates value on record with id: "
            f"{duplicate}",
            fields=[EXTERNAL_ID_FIELD],
        ) from exc
    return Response.json({"id": sf_id(obj, record.pk), "success": True, "errors": []}, status=201)


def sobject_update(request: Request, version: str, sobject: str, record_id: str) -> Response:
    """PATCH /sobjects/{type}/{id}: 204."""
    return sobject_upsert(request, version, sobject, "Id", record_id)


def sobject_delete(request: Request, version: str, sobject: str, record_id: str) -> Response:
    _version(version)
    obj = _object(sobject)
    pk = sf_id_parse(record_id, expected=obj)
    record = storage.record_get(system=SYSTEM, object_type=obj.name, record_id=pk) if pk else None
    if record is None:
        raise _not_found()
    with transaction.atomic(using=SANDBOX_DB):
        record.deleted = True
        record.save(using=SANDBOX_DB, update_fields=["deleted"])
        storage.record_update(record=record, changes={}, action="deleted")
    return Response.empty(204)
