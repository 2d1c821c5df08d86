"""SCIM 2.0 handlers: /Users list and get, discovery documents.

Follows RFC 7644 (https://www.rfc-editor.org/rfc/rfc7644): filter, startIndex/count paging,
ListResponse, error responses (§3.12); and RFC 7643 for the User and enterprise extension.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

from django.db.models import Q
from django.db.models.fields.json import KeyTransform

from sandbox import storage
from sandbox.core.auth import bearer_token
from sandbox.core.params import aware_datetime
from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.models import SandboxRecord
from sandbox.scim.discovery import SCHEMAS, schema_render
from sandbox.scim.filter import Comparison, ScimFilterError, scim_filter_parse
from sandbox.scim.schema import (
    COSTING_URN,
    DEFAULT_COUNT,
    ENTERPRISE_URN,
    LIST_SCHEMA,
    MAX_COUNT,
    MEDIA_TYPE,
    OBJECT_TYPE,
    SYSTEM,
    USER_SCHEMA,
    scim_id,
    scim_id_parse,
)

ACCESS_TOKEN = "sandbox-scim-token"  # noqa: S105 - public test credential
# Attributes SCIM compares case-sensitively (RFC 7643: caseExact); the rest ignore case.
_CASE_EXACT = {("id",), ("externalId",), ("meta", "lastModified"), ("meta", "created")}


def credentials(base_url: str) -> dict[str, Any]:
    return {"base_url": base_url, "access_token": ACCESS_TOKEN}


def authenticate(request: Request) -> None:
    token = bearer_token(request)
    if token is None or not hmac.compare_digest(token, ACCESS_TOKEN):
        raise SandboxError(401, "", "Authorization failure: a valid bearer token is required")


def scim_json(payload: Any, status: int = 200) -> Response:
    return Response.json(payload, status=status, headers={"Content-Type": MEDIA_TYPE})


def scim_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_render(request: Request, record: SandboxRecord) -> dict[str, Any]:
    data = dict(record.data)
    schemas = [USER_SCHEMA]
    schemas += [urn for urn in (ENTERPRISE_URN, COSTING_URN) if urn in data]
    user: dict[str, Any] = {"schemas": schemas, "id": scim_id(record.pk)}
    if record.external_id is not None:
        user["externalId"] = record.external_id
    user.update(data)
    user["active"] = record.status != "inactive"
    user["meta"] = {
        "resourceType": "User",
        "created": scim_time(record.created_at),
        "lastModified": scim_time(record.updated_at),
        "location": f"{request.base_url}/Users/{scim_id(record.pk)}",
        "version": f'W/"{int(record.updated_at.timestamp() * 1000)}"',
    }
    return request.drift(user)


def _invalid_filter(message: str) -> SandboxError:
    return SandboxError(400, "invalidFilter", message)


def _condition(comparison: Comparison, aliases: dict[str, Any]) -> Q:
    path, op, value = comparison.path, comparison.op, comparison.value
    if path == ("id",):
        column = "pk"
        if value is not None:
            if not isinstance(value, str):
                raise _invalid_filter("id must be compared with a string")
            value = scim_id_parse(value) or -1
    elif path == ("externalId",):
        column = "external_id"
    elif path == ("active",):
        if op == "pr":
            return Q()
        if op not in {"eq", "ne"} or not isinstance(value, bool):
            raise _invalid_filter("active can only be compared with eq/ne true or false")
        inactive = Q(status="inactive")
        wants_active = value if op == "eq" else not value
        return ~inactive if wants_active else inactive
    elif path[0] == "meta":
        column = "updated_at" if path[1] == "lastModified" else "created_at"
        if op == "pr":
            return Q()
        if not isinstance(value, str):
            raise _invalid_filter(f"meta.{path[1]} must be compared with a dateTime string")
        value = aware_datetime(value)
        if value is None:
            raise _invalid_filter(f"Invalid dateTime value: {comparison.value}")
        if op in {"co", "sw", "ew"}:
            raise _invalid_filter(f"Operator {op} is not valid for a dateTime attribute")
    else:
        expression: Any = "data"
        for key in path[:-1]:
            expression = KeyTransform(key, expression)
        column = f"a{len(aliases)}"
        text = isinstance(value, str) or op in {"co", "sw", "ew"}
        leaf = path[-1]
        aliases[column] = (
            storage.data_text(leaf, expression) if text else KeyTransform(leaf, expression)
        )
    insensitive = path not in _CASE_EXACT and isinstance(value, str)
    if op == "pr":
        return Q(**{f"{column}__isnull": False})
    if value is None:
        return Q(**{f"{column}__isnull": op == "eq"})
    lookups = {
        "eq": "iexact" if insensitive else "exact",
        "ne": "iexact" if insensitive else "exact",
        "co": "icontains",
        "sw": "istartswith",
        "ew": "iendswith",
        "gt": "gt",
        "ge": "gte",
        "lt": "lt",
        "le": "lte",
    }
    q = Q(**{f"{column}__{lookups[op]}": value})
    return ~q if op == "ne" else q


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.param(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise SandboxError(400, "invalidValue", f"{name} must be an integer, got {raw!r}") from None


def users_list(request: Request) -> Response:
    """GET /Users?filter=…&startIndex=…&count=…"""
    # RFC 7644 §3.4.2.4: startIndex below 1 is read as 1, a negative count as 0.
    start_index = max(_int_param(request, "startIndex", 1), 1)
    count = min(max(_int_param(request, "count", DEFAULT_COUNT), 0), MAX_COUNT)
    qs = storage.record_queryset(system=SYSTEM, object_type=OBJECT_TYPE)
    text = request.param("filter")
    if text is not None:
        try:
            comparisons = scim_filter_parse(text)
        except ScimFilterError as exc:
            raise _invalid_filter(str(exc)) from exc
        aliases: dict[str, Any] = {}
        conditions = [_condition(c, aliases) for c in comparisons]
        if aliases:
            qs = qs.alias(**aliases)
        for condition in conditions:
            qs = qs.filter(condition)
    total = qs.count()
    offset = start_index - 1
    rows = list(qs.order_by("pk")[offset : offset + count]) if count and offset < total else []
    return scim_json(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": len(rows),
            "Resources": [user_render(request, row) for row in rows],
        }
    )


def user_get(request: Request, user_id: str) -> Response:
    pk = scim_id_parse(user_id)
    record = (
        storage.record_get(system=SYSTEM, object_type=OBJECT_TYPE, record_id=pk) if pk else None
    )
    if record is None:
        raise SandboxError(404, "", f"Resource {user_id} not found")
    return scim_json(user_render(request, record))


def service_provider_config(request: Request) -> Response:
    return scim_json(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": False},
            "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": True, "maxResults": MAX_COUNT},
            "changePassword": {"supported": False},
            "sort": {"supported": False},
            "etag": {"supported": False},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "OAuth Bearer Token",
                    "description": "Authentication with a static bearer token",
                }
            ],
        }
    )


def resource_types(request: Request) -> Response:
    return scim_json(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": 1,
            "startIndex": 1,
            "itemsPerPage": 1,
            "Resources": [
                {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                    "id": "User",
                    "name": "User",
                    "endpoint": "/Users",
                    "schema": USER_SCHEMA,
                    "schemaExtensions": [
                        {"schema": ENTERPRISE_URN, "required": False},
                        {"schema": COSTING_URN, "required": False},
                    ],
                }
            ],
        }
    )


def schemas_list(request: Request) -> Response:
    """GET /Schemas (RFC 7644 §4): every schema the emulator serves, as a ListResponse."""
    resources = [schema_render(urn, base_url=request.base_url) for urn in SCHEMAS]
    return scim_json(
        {
            "schemas": [LIST_SCHEMA],
            "totalResults": len(resources),
            "startIndex": 1,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


def schema_get(request: Request, urn: str) -> Response:
    """GET /Schemas/<urn>: one schema resource, 404 in SCIM's error shape when unknown."""
    resource = schema_render(urn, base_url=request.base_url)
    if resource is None:
        raise SandboxError(404, "", f"Resource {urn} not found")
    return scim_json(resource)
