"""Kantata (Mavenlink) REST v1 emulator (PSA): projects, tasks, people, time, expenses, events."""

from __future__ import annotations

from sandbox.core import protocol
from sandbox.core.dialects import Dialect, Route
from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.kantata import stories, views, webhooks
from sandbox.kantata.schema import RESOURCES, SYSTEM

_RESOURCE = "{resource:" + "|".join(RESOURCES) + "}"
_ID = "{record_id:[0-9]+}"
_FMT = "{fmt:(?:\\.json)?}"

_CORE_TYPES = {
    protocol.NOT_FOUND: (404, "not_found"),
    protocol.METHOD_NOT_ALLOWED: (405, "argument"),
    protocol.MALFORMED_JSON: (400, "argument"),
    protocol.RATE_LIMITED: (429, "rate_limit"),
    protocol.CONCURRENCY_LIMITED: (429, "rate_limit"),
    protocol.INJECTED_FAULT: (None, "system"),
    protocol.INTERNAL: (500, "system"),
}


def render_error(request: Request, error: SandboxError) -> Response:
    """Kantata's error body: {"errors": [{"type", "message", "field"?}]}.

    Over the rate limit Kantata answers 429 with no Retry-After header: clients must back off
    on their own.
    """
    status, kind = error.status, error.code
    if kind in _CORE_TYPES:
        mapped, kind = _CORE_TYPES[kind]
        status = mapped or status
    message = error.message
    if error.code == protocol.RATE_LIMITED:
        message = "You have exceeded the rate limit. Please try again later."
    entry = {"type": kind, "message": message}
    if error.fields:
        entry["field"] = error.fields[0]
    response = Response.json({"errors": [entry]}, status=status)
    response.headers.pop("Retry-After", None)
    return response


DIALECT = Dialect(
    system=SYSTEM,
    prefix="/kantata",
    routes=[
        Route("GET", f"/api/v1/change_events{_FMT}", views.change_events),
        Route("GET", f"/api/v1/webhook_subscriptions{_FMT}", webhooks.subscription_list),
        Route("POST", f"/api/v1/webhook_subscriptions{_FMT}", webhooks.subscription_create),
        Route("DELETE", f"/api/v1/webhook_subscriptions/{_ID}{_FMT}", webhooks.subscription_delete),
        Route("POST", f"/api/v1/workspaces{_FMT}", views.workspace_create),
        Route("PUT", f"/api/v1/workspaces/{_ID}{_FMT}", views.workspace_update),
        Route("POST", f"/api/v1/stories{_FMT}", stories.story_create),
        Route("PUT", f"/api/v1/stories/{_ID}{_FMT}", stories.story_update),
        Route("GET", f"/api/v1/{_RESOURCE}{_FMT}", views.resource_list),
        Route("GET", f"/api/v1/{_RESOURCE}/{_ID}{_FMT}", views.resource_get),
    ],
    render_error=render_error,
    authenticate=views.authenticate,
    credentials=views.credentials,
    workers=(webhooks.WebhookDispatcher,),
)
