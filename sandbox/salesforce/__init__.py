"""Salesforce REST emulator (CRM): OAuth token, SOQL query paging, upsert by external id."""

from __future__ import annotations

from sandbox.core import protocol
from sandbox.core.dialects import Dialect, Route
from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.salesforce import views
from sandbox.salesforce.schema import SYSTEM

DAILY_API_LIMIT = 100_000

_V = "{version:v\\d+\\.\\d}"

_CORE_CODES = {
    protocol.NOT_FOUND: (404, "NOT_FOUND"),
    protocol.METHOD_NOT_ALLOWED: (405, "METHOD_NOT_ALLOWED"),
    protocol.MALFORMED_JSON: (400, "JSON_PARSER_ERROR"),
    protocol.RATE_LIMITED: (403, "REQUEST_LIMIT_EXCEEDED"),
    protocol.CONCURRENCY_LIMITED: (429, "REQUEST_LIMIT_EXCEEDED"),
    protocol.INTERNAL: (500, "UNKNOWN_EXCEPTION"),
}


def render_error(request: Request, error: SandboxError) -> Response:
    """Salesforce's error body: [{"message", "errorCode", "fields"}]."""
    status, code, message = error.status, error.code, error.message
    if code in _CORE_CODES:
        status, code = _CORE_CODES[code]
        if error.code == protocol.RATE_LIMITED:
            message = "TotalRequests Limit exceeded."
        elif error.code == protocol.CONCURRENCY_LIMITED:
            message = "ConcurrentPerOrgLongTxn Limit exceeded."
    elif code == protocol.INJECTED_FAULT:
        code = "SERVER_UNAVAILABLE" if status == 503 else "UNKNOWN_EXCEPTION"
    body = [{"message": message, "errorCode": code, "fields": error.fields}]
    return Response.json(body, status=status)


def add_limit_info(request: Request, response: Response) -> None:
    """Every counted answer carries `Sforce-Limit-Info: api-usage=N/M`."""
    usage = request.state.get("usage")
    if usage and usage[1] is not None:
        response.headers["Sforce-Limit-Info"] = f"api-usage={usage[0]}/{usage[1]}"


DIALECT = Dialect(
    system=SYSTEM,
    prefix="/salesforce",
    routes=[
        Route(
            "POST",
            "/services/oauth2/token",
            views.oauth_token,
            auth=False,
            counted=False,
            writes=False,
        ),
        Route("GET", "/services/data", views.versions_list, auth=False, counted=False),
        Route("GET", "/services/data/", views.versions_list, auth=False, counted=False),
        Route("GET", f"/services/data/{_V}/limits", views.limits_get),
        Route("GET", f"/services/data/{_V}/query", views.query),
        Route("GET", f"/services/data/{_V}/query/", views.query),
        Route("GET", f"/services/data/{_V}/query/{{locator}}", views.query_more),
        Route("POST", f"/services/data/{_V}/sobjects/{{sobject}}", views.sobject_create),
        # simple-salesforce's `create` posts to `…/sobjects/Contract/`: Salesforce accepts the
        # trailing slash, so the sandbox does too.
        Route("POST", f"/services/data/{_V}/sobjects/{{sobject}}/", views.sobject_create),
        Route("GET", f"/services/data/{_V}/sobjects/{{sobject}}/{{record_id}}", views.sobject_get),
        Route(
            "PATCH", f"/services/data/{_V}/sobjects/{{sobject}}/{{record_id}}", views.sobject_update
        ),
        Route(
            "DELETE",
            f"/services/data/{_V}/sobjects/{{sobject}}/{{record_id}}",
            views.sobject_delete,
        ),
        Route(
            "GET",
            f"/services/data/{_V}/sobjects/{{sobject}}/{{field}}/{{value}}",
            views.sobject_get_by_external_id,
        ),
        Route(
            "PATCH",
            f"/services/data/{_V}/sobjects/{{sobject}}/{{field}}/{{value}}",
            views.sobject_upsert,
        ),
    ],
    render_error=render_error,
    authenticate=views.authenticate,
    credentials=views.credentials,
    default_faults={"rate_limit": DAILY_API_LIMIT, "rate_window_seconds": 86_400},
    after_response=add_limit_info,
)
