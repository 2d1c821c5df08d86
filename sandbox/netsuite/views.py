"""NetSuite REST web services handlers: auth, errors, the record service and SuiteQL.

Follows the SuiteTalk REST Web Services guide
(https://docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/chapter_1540391670.html):
record collections page with `limit`/`offset` and answer `{links, count, hasMore, items, offset,
totalResults}`; a create answers 204 with the new record's `Location`; errors are
`{"type", "title", "status", "o:errorDetails": [{"detail", "o:errorCode", "o:errorPath"}]}`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from functools import wraps
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from sandbox import storage
from sandbox.core.auth import bearer_token, token_issue, token_subject
from sandbox.core.protocol import (
    CONCURRENCY_LIMITED,
    INJECTED_FAULT,
    INTERNAL,
    MALFORMED_JSON,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHORIZED,
    Request,
    Response,
    SandboxError,
)
from sandbox.netsuite import jobs, services
from sandbox.netsuite.qfilter import q_parse
from sandbox.netsuite.query import (
    query_queryset,
    row_render,
    select_targets,
)
from sandbox.netsuite.records import record_render, record_url
from sandbox.netsuite.schema import SYSTEM, RecordSpec, Table, record_spec, suiteql_table
from sandbox.netsuite.suiteql import SuiteQLError, suiteql_parse

ACCOUNT_ID = "1234567_SB1"
CONSUMER_KEY = "sandbox-netsuite-consumer-key"
CONSUMER_SECRET = "sandbox-netsuite-consumer-secret"  # noqa: S105 - public test credential
TOKEN_ID = "sandbox-netsuite-token-id"  # noqa: S105 - public test credential
TOKEN_SECRET = "sandbox-netsuite-token-secret"  # noqa: S105 - public test credential
CLIENT_ID = "sandbox-netsuite-client-id"
CLIENT_SECRET = "sandbox-netsuite-client-secret"  # noqa: S105 - public test credential
MAX_LIMIT = 1000
ERROR_TYPE = "application/vnd.oracle.resource+json; type=error"

_CORE_CODES = {
    NOT_FOUND: "NONEXISTENT_ID",
    METHOD_NOT_ALLOWED: "METHOD_NOT_ALLOWED",
    MALFORMED_JSON: "INVALID_CONTENT",
    UNAUTHORIZED: "INVALID_LOGIN",
    RATE_LIMITED: "REQUEST_LIMIT_EXCEEDED",
    CONCURRENCY_LIMITED: "CONCURRENCY_LIMIT_EXCEEDED",
    INJECTED_FAULT: "UNEXPECTED_ERROR",
    INTERNAL: "UNEXPECTED_ERROR",
}
_CORE_DETAILS = {
    CONCURRENCY_LIMITED: "Concurrent request limit exceeded. Request blocked.",
    RATE_LIMITED: "Request limit exceeded. Request blocked.",
    INJECTED_FAULT: "An unexpected error occurred. Error ID: sandbox-injected-fault",
}
_TYPE_SECTIONS = {
    400: "10.4.1",
    401: "10.4.2",
    403: "10.4.4",
    404: "10.4.5",
    405: "10.4.6",
    409: "10.4.10",
    500: "10.5.1",
    502: "10.5.3",
    503: "10.5.4",
    504: "10.5.5",
}
_LOGIN_DETAIL = (
    "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at "
    "Setup > Users/Roles > User Management > View Login Audit Trail."
)


def credentials(base_url: str) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "rest_url": base_url + "/services/rest",
        "account_id": ACCOUNT_ID,
        "realm": ACCOUNT_ID,
        "signature_method": "HMAC-SHA256",
        "consumer_key": CONSUMER_KEY,
        "consumer_secret": CONSUMER_SECRET,
        "token_id": TOKEN_ID,
        "token_secret": TOKEN_SECRET,
        "token_url": base_url + "/services/rest/auth/oauth2/v1/token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }


def render_error(request: Request, error: SandboxError) -> Response:
    status = error.status
    detail: dict[str, Any] = {
        "detail": _CORE_DETAILS.get(error.code, error.message),
        "o:errorCode": _CORE_CODES.get(error.code, error.code),
    }
    if error.fields and error.fields[0]:
        detail["o:errorPath"] = error.fields[0]
    if status == 429:
        kind = "https://tools.ietf.org/html/rfc6585#section-4"
    else:
        section = _TYPE_SECTIONS.get(status, "10.4.1" if status < 500 else "10.5.1")
        kind = f"https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec{section}"
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body = {"type": kind, "title": title, "status": status, "o:errorDetails": [detail]}
    return Response.json(body, status=status, headers={"Content-Type": ERROR_TYPE})


# -- authentication ----------------------------------------------------------------------------
def _unauthorized() -> SandboxError:
    return SandboxError(401, UNAUTHORIZED, _LOGIN_DETAIL)


def _percent(value: str) -> str:
    return quote(value, safe="~-._")


def oauth1_parameters(header: str) -> dict[str, str]:
    """The parameters of an `Authorization: OAuth k="v", …` header, percent-decoded."""
    params = {}
    for part in header.split(",") if header else []:
        name, sep, value = part.strip().partition("=")
        if sep:
            params[name.strip()] = unquote(value.strip().strip('"'))
    return params


def oauth1_signature(
    *, method: str, url: str, params: dict[str, str], consumer_secret: str, token_secret: str
) -> str:
    """RFC 5849 HMAC-SHA256 signature (what NetSuite's token-based authentication checks).

    `params` are the oauth_* parameters (without realm and oauth_signature) and the query's.
    """
    parts = urlsplit(url)
    base_uri = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    normalized = "&".join(
        f"{k}={v}" for k, v in sorted((_percent(k), _percent(v)) for k, v in params.items())
    )
    base = "&".join([method.upper(), _percent(base_uri), _percent(normalized)])
    key = f"{_percent(consumer_secret)}&{_percent(token_secret)}"
    digest = hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _oauth1_valid(request: Request, header: str) -> bool:
    params = oauth1_parameters(header)
    if params.get("oauth_consumer_key") != CONSUMER_KEY or params.get("oauth_token") != TOKEN_ID:
        return False
    if params.get("oauth_signature_method") != "HMAC-SHA256":
        return False
    signed = {k: v for k, v in params.items() if k.startswith("oauth_") and k != "oauth_signature"}
    for name, values in request.query.items():
        for value in values:
            signed[name] = value  # the sandbox's clients send each query parameter once
    expected = oauth1_signature(
        method=request.method,
        url=request.base_url + request.path,
        params=signed,
        consumer_secret=CONSUMER_SECRET,
        token_secret=TOKEN_SECRET,
    )
    return hmac.compare_digest(expected, params.get("oauth_signature", ""))


def authenticate(request: Request) -> None:
    value = request.header("authorization") or ""
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "oauth" and "oauth_consumer_key" in rest:
        if not _oauth1_valid(request, rest):
            raise _unauthorized()
        return
    token = bearer_token(request)
    if token is None or token_subject(system=SYSTEM, token=token) is None:
        raise _unauthorized()


def oauth2_token(request: Request) -> Response:
    """POST /services/rest/auth/oauth2/v1/token, client credentials (id/secret, not a JWT)."""
    form = request.form()
    client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
    scheme, _, encoded = (request.header("authorization") or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id = client_secret = ""
    if form.get("grant_type") != "client_credentials":
        return Response.json({"error": "unsupported_grant_type"}, status=400)
    known_client = hmac.compare_digest(client_id, CLIENT_ID)
    if not (known_client and hmac.compare_digest(client_secret, CLIENT_SECRET)):
        return Response.json({"error": "invalid_client"}, status=401)
    return Response.json(
        {
            "access_token": token_issue(system=SYSTEM, subject=ACCOUNT_ID, ttl_seconds=3600),
            "token_type": "Bearer",
            "expires_in": "3600",
        }
    )


# -- helpers -----------------------------------------------------------------------------------
def asyncable(handler):
    """Run the handler as an async job when the client sends `Prefer: respond-async`."""

    @wraps(handler)
    def wrapper(request: Request, **params: str) -> Response:
        if jobs.wants_async(request):
            return jobs.async_run(request, handler, params, render_error)
        if request.header(jobs.IDEMPOTENCY_HEADER) is not None:
            raise SandboxError(
                400,
                "INVALID_HEADER",
                "The X-NetSuite-Idempotency-Key header is supported only for asynchronous "
                "requests (Prefer: respond-async).",
            )
        return handler(request, **params)

    return wrapper


def _spec(record_type: str) -> RecordSpec:
    spec = record_spec(record_type)
    if spec is None:
        raise SandboxError(404, "NONEXISTENT_ID", f"Record type '{record_type}' does not exist.")
    return spec


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.param(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise SandboxError(
            400,
            "INVALID_PARAMETER",
            f"Invalid value for the query parameter {name}: {raw}. The value must be an "
            f"integer between {low} and {high}.",
            fields=[name],
        )
    return int(raw)


def _paging(request: Request) -> tuple[int, int]:
    limit = _int_param(request, "limit", MAX_LIMIT, 1, MAX_LIMIT)
    offset = _int_param(request, "offset", 0, 0, 10**9)
    return limit, offset


def _page_links(url: str, params: dict[str, str], limit: int, offset: int, total: int) -> list:
    def link(rel: str, at: int) -> dict[str, str]:
        return {"rel": rel, "href": f"{url}?{urlencode({**params, 'limit': limit, 'offset': at})}"}

    last = max((total - 1) // limit * limit, 0)
    links = [link("first", 0)]
    if offset > 0:
        links.append(link("prev", max(offset - limit, 0)))
    if offset + limit < total:
        links.append(link("next", offset + limit))
    links.extend([link("last", last), link("self", offset)])
    return links


def _collection(*, items: list, url: str, params: dict, limit: int, offset: int, total: int):
    body = {
        "links": _page_links(url, params, limit, offset, total),
        "count": len(items),
        "hasMore": offset + len(items) < total,
        "items": items,
        "offset": offset,
        "totalResults": total,
    }
    return Response.json(body, headers={"Content-Type": jobs.COLLECTION})


def _query_error(exc: SuiteQLError) -> SandboxError:
    return SandboxError(
        400,
        "INVALID_PARAMETER",
        f"Invalid search query. Detailed unprocessed description follows. {exc}",
        fields=["q"],
    )


# -- record service ----------------------------------------------------------------------------
def record_list(request: Request, record_type: str) -> Response:
    """GET /record/v1/{type}?limit&offset&q: ids and links, in internal id order."""
    spec = _spec(record_type)
    limit, offset = _paging(request)
    text = request.param("q")
    try:
        where = q_parse(text) if text else None
        queryset = query_queryset(Table(spec.name, (spec,)), where=where, order_by=[])
    except SuiteQLError as exc:
        raise _query_error(exc) from exc
    total = queryset.count()
    ids = list(queryset.values_list("pk", flat=True)[offset : offset + limit])
    items = [
        {
            "links": [{"rel": "self", "href": record_url(request.base_url, spec.name, pk)}],
            "id": str(pk),
        }
        for pk in ids
    ]
    url = f"{request.base_url}/services/rest/record/v1/{spec.name}"
    return _collection(
        items=items,
        url=url,
        params={"q": text} if text else {},
        limit=limit,
        offset=offset,
        total=total,
    )


def _record_answer(request: Request, spec: RecordSpec, record) -> Response:
    expand = (request.param("expandSubResources") or "").lower() == "true"
    return Response.json(
        record_render(request=request, spec=spec, record=record, expand=expand),
        headers={"Content-Type": jobs.SINGULAR},
    )


def record_get(request: Request, record_type: str, record_id: str) -> Response:
    spec = _spec(record_type)
    return _record_answer(request, spec, services.record_get(spec=spec, record_id=record_id))


def record_get_by_external_id(request: Request, record_type: str, external_id: str) -> Response:
    spec = _spec(record_type)
    record = storage.record_get_by_external_id(
        system=SYSTEM, object_type=spec.name, external_id=unquote(external_id)
    )
    if record is None:
        raise services.not_found()
    return _record_answer(request, spec, record)


def _written(request: Request, spec: RecordSpec, record) -> Response:
    return Response.empty(
        204, headers={"Location": record_url(request.base_url, spec.name, record.pk)}
    )


@asyncable
def record_create(request: Request, record_type: str) -> Response:
    """POST /record/v1/{type}: 204 + Location of the new record."""
    spec = _spec(record_type)
    record = services.record_create(spec=spec, body=request.json())
    return _written(request, spec, record)


@asyncable
def record_patch(request: Request, record_type: str, record_id: str) -> Response:
    spec = _spec(record_type)
    record = services.record_get(spec=spec, record_id=record_id)
    services.record_patch(spec=spec, record=record, body=request.json())
    return _written(request, spec, record)


@asyncable
def record_upsert(request: Request, record_type: str, external_id: str) -> Response:
    """PUT /record/v1/{type}/eid:{externalId}: create or update; 204 + Location either way."""
    spec = _spec(record_type)
    record, _created = services.record_upsert(
        spec=spec, external_id=unquote(external_id), body=request.json()
    )
    return _written(request, spec, record)


@asyncable
def record_delete(request: Request, record_type: str, record_id: str) -> Response:
    spec = _spec(record_type)
    services.record_delete(spec=spec, record=services.record_get(spec=spec, record_id=record_id))
    return Response.empty(204)


# -- SuiteQL -----------------------------------------------------------------------------------
@asyncable
def suiteql(request: Request) -> Response:
    """POST /query/v1/suiteql?limit&offset with {"q": "SELECT …"} (header Prefer: transient)."""
    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("q"), str) or set(body) - {"q"}:
        raise SandboxError(
            400,
            "INVALID_CONTENT",
            'Invalid content in the request body: expected {"q": "<SuiteQL statement>"}.',
            fields=["q"],
        )
    limit, offset = _paging(request)
    try:
        parsed = suiteql_parse(body["q"])
        table = suiteql_table(parsed.table)
        if table is None:
            raise SuiteQLError(f"Record '{parsed.table}' was not found.")
        queryset = query_queryset(table, where=parsed.where, order_by=parsed.order_by)
        targets = None
        if parsed.items is not None and not parsed.count_only:
            targets = select_targets(table, parsed, None)
    except SuiteQLError as exc:
        raise _query_error(exc) from exc
    url = f"{request.base_url}/services/rest/query/v1/suiteql"
    if parsed.count_only:
        count = queryset.count() if parsed.top is None else min(queryset.count(), parsed.top)
        item = {"links": [], **{i.alias: str(count) for i in parsed.items}}
        items = [item] if offset == 0 else []
        return _collection(items=items, url=url, params={}, limit=limit, offset=offset, total=1)
    total = queryset.count()
    if parsed.top is not None:
        total = min(total, parsed.top)
    rows = list(queryset[offset : min(offset + limit, total)]) if offset < total else []
    by_type: dict[str, list] = {}
    items = []
    for row in rows:
        if targets is None:
            kind = row.object_type
            if kind not in by_type:
                by_type[kind] = select_targets(table, parsed, record_spec(kind))
            row_targets = by_type[kind]
        else:
            row_targets = targets
        items.append(row_render(row, row_targets))
    return _collection(items=items, url=url, params={}, limit=limit, offset=offset, total=total)
