"""SCIM 2.0 emulator (HR): Users with the enterprise and a cost-rate extension, read-only."""

from __future__ import annotations

from sandbox.core import protocol
from sandbox.core.dialects import Dialect, Route
from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.scim import views
from sandbox.scim.schema import ERROR_SCHEMA, SYSTEM

_CORE_TYPES = {
    protocol.NOT_FOUND: (404, ""),
    protocol.METHOD_NOT_ALLOWED: (405, ""),
    protocol.MALFORMED_JSON: (400, "invalidSyntax"),
    protocol.RATE_LIMITED: (429, ""),
    protocol.CONCURRENCY_LIMITED: (429, ""),
    protocol.INJECTED_FAULT: (None, ""),
    protocol.INTERNAL: (500, ""),
}


def render_error(request: Request, error: SandboxError) -> Response:
    """RFC 7644 §3.12: {"schemas": [Error], "status": "400", "scimType": …, "detail": …}."""
    status, scim_type = error.status, error.code
    if scim_type in _CORE_TYPES:
        mapped, scim_type = _CORE_TYPES[scim_type]
        status = mapped or status
    body = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": error.message}
    if scim_type:
        body["scimType"] = scim_type
    return views.scim_json(body, status=status)


DIALECT = Dialect(
    system=SYSTEM,
    prefix="/scim/v2",
    routes=[
        Route("GET", "/Users", views.users_list),
        Route("GET", "/Users/{user_id}", views.user_get),
        Route("GET", "/ServiceProviderConfig", views.service_provider_config),
        Route("GET", "/ResourceTypes", views.resource_types),
        Route("GET", "/Schemas", views.schemas_list),
        Route("GET", "/Schemas/{urn}", views.schema_get),
    ],
    render_error=render_error,
    authenticate=views.authenticate,
    credentials=views.credentials,
)
