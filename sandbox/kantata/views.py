"""Kantata REST v1 handlers: side-loaded lists with page/per_page, workspace writes, change feed.

Follows the Kantata OX API documentation (https://developer.kantata.com/, formerly
https://developer.mavenlink.com/): response shape `{count, results: [{key, id}], <key>: {id:
{...}}, meta}`, `page`/`per_page` (max 200), `only`, `updated_after`, `order`; errors
`{"errors": [{"type", "message", "field"?}]}`.
"""

from __future__ import annotations

import datetime as dt
import hmac
import math
from typing import Any

from django.db import IntegrityError
from django.utils import timezone

from sandbox import storage
from sandbox.core.auth import bearer_token
from sandbox.core.params import aware_datetime, id_value
from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.kantata.paging import HINTS
from sandbox.kantata.schema import (
    CURRENCIES,
    DEFAULT_PER_PAGE,
    EVENT_RETENTION_DAYS,
    MAX_PER_PAGE,
    RESOURCES,
    SYSTEM,
    WORKSPACE_FIELDS,
    WORKSPACE_REQUIRED,
    ResourceSpec,
)
from sandbox.models import SandboxRecord

ACCESS_TOKEN = "sandbox-kantata-token"  # noqa: S105 - public test credential
ORDER_FIELDS = {"id": "pk", "updated_at": "updated_at", "created_at": "created_at"}


def credentials(base_url: str) -> dict[str, Any]:
    return {"base_url": base_url + "/api/v1", "access_token": ACCESS_TOKEN}


def authenticate(request: Request) -> None:
    token = bearer_token(request)
    if token is None or not hmac.compare_digest(token, ACCESS_TOKEN):
        raise SandboxError(401, "authentication", "Invalid or missing OAuth token")


# -- parameters --------------------------------------------------------------------------------
def _argument_error(message: str) -> SandboxError:
    return SandboxError(400, "argument", message)


def _positive_int(request: Request, name: str, default: int) -> int:
    raw = request.param(name)
    if raw in (None, ""):
        return default
    value = id_value(raw)
    if value is None or value < 1:
        raise _argument_error(f"{name} must be a positive integer, got {raw!r}")
    return value


def datetime_param(raw: str, name: str) -> dt.datetime:
    # A "+" in a query string arrives as a space when the client did not encode it.
    value = aware_datetime(raw.replace(" ", "+"))
    if value is None:
        raise _argument_error(f"{name} must be an ISO 8601 date or time, got {raw!r}")
    return value


def _bool_param(raw: str, name: str) -> bool:
    if raw.lower() in {"true", "1"}:
        return True
    if raw.lower() in {"false", "0"}:
        return False
    raise _argument_error(f"{name} must be true or false, got {raw!r}")


def _ids_param(raw: str, name: str) -> list[int]:
    parts = [p for p in raw.split(",") if p]
    ids = [id_value(p) for p in parts]
    if not ids or None in ids:
        raise _argument_error(f"{name} must be a comma-separated list of ids, got {raw!r}")
    return ids


# -- rendering ---------------------------------------------------------------------------------
def kantata_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def record_render(spec: ResourceSpec, record: SandboxRecord) -> dict[str, Any]:
    rendered: dict[str, Any] = {"id": str(record.pk), **record.data}
    if spec.workspace_scoped and record.parent_id is not None:
        rendered["workspace_id"] = str(record.parent_id)
    if spec.approvable:
        rendered["approved"] = record.status == "approved"
    if spec.key == "workspaces" and record.external_id is not None:
        rendered["external_reference"] = record.external_id
    rendered["created_at"] = kantata_time(record.created_at)
    rendered["updated_at"] = kantata_time(record.updated_at)
    return rendered


def _page_payload(
    request: Request, spec: ResourceSpec, rows: list[SandboxRecord], meta: dict[str, int]
) -> dict[str, Any]:
    return {
        "count": meta["count"],
        "results": [{"key": spec.key, "id": str(row.pk)} for row in rows],
        spec.key: {str(row.pk): request.drift(record_render(spec, row)) for row in rows},
        "meta": meta,
    }


def _resource(resource: str) -> ResourceSpec:
    spec = RESOURCES.get(resource)
    if spec is None:
        raise SandboxError(404, "not_found", f"Unknown resource {resource}")
    return spec


# -- reads -------------------------------------------------------------------------------------
def _filtered(request: Request, spec: ResourceSpec):
    qs = storage.record_queryset(system=SYSTEM, object_type=spec.key)
    if (only := request.param("only")) is not None:
        qs = qs.filter(pk__in=_ids_param(only, "only"))
    if (raw := request.param("updated_after")) is not None:
        qs = qs.filter(updated_at__gt=datetime_param(raw, "updated_after"))
    if (raw := request.param("created_after")) is not None:
        qs = qs.filter(created_at__gt=datetime_param(raw, "created_after"))
    if spec.workspace_scoped and (raw := request.param("workspace_id")) is not None:
        qs = qs.filter(parent_id__in=_ids_param(raw, "workspace_id"))
    if spec.approvable and (raw := request.param("approved")) is not None:
        qs = qs.filter(status="approved" if _bool_param(raw, "approved") else "unapproved")
    if spec.approvable and (raw := request.param("status")) is not None:
        if raw not in {"approved", "unapproved"}:
            raise _argument_error(f"status must be approved or unapproved, got {raw!r}")
        qs = qs.filter(status=raw)
    for name in spec.json_filters:
        if (raw := request.param(name)) is not None:
            ids = [str(i) for i in _ids_param(raw, name)]
            qs = qs.alias(**{f"k_{name}": storage.data_text(name)}).filter(**{f"k_{name}__in": ids})
    if spec.key == "time_entries" and (raw := request.param("date_performed_between")) is not None:
        start, _, end = raw.partition(":")
        try:
            bounds = (
                dt.date.fromisoformat(start).isoformat(),
                dt.date.fromisoformat(end).isoformat(),
            )
        except ValueError:
            raise _argument_error(
                f"date_performed_between must be YYYY-MM-DD:YYYY-MM-DD, got {raw!r}"
            ) from None
        qs = qs.alias(k_date=storage.data_text("date_performed")).filter(
            k_date__gte=bounds[0], k_date__lte=bounds[1]
        )
    if spec.key == "workspaces" and (raw := request.param("external_reference")) is not None:
        qs = qs.filter(external_id=raw)
    if spec.key == "stories" and (raw := request.param("external_reference")) is not None:
        qs = qs.alias(k_ref=storage.data_text("external_reference")).filter(k_ref=raw)
    return qs


def _ordering(request: Request) -> list[str]:
    raw = request.param("order") or "id:asc"
    name, _, direction = raw.partition(":")
    direction = direction or "asc"
    if name not in ORDER_FIELDS or direction not in {"asc", "desc"}:
        raise _argument_error(
            f"order must be one of {sorted(ORDER_FIELDS)} with :asc or :desc, got {raw!r}"
        )
    column = ORDER_FIELDS[name]
    prefix = "-" if direction == "desc" else ""
    return [prefix + column] if column == "pk" else [prefix + column, prefix + "pk"]


def resource_list(request: Request, resource: str, fmt: str = "") -> Response:
    """GET /api/v1/<resource>[.json]"""
    spec = _resource(resource)
    page = _positive_int(request, "page", 1)
    # Kantata caps per_page at 200 rather than refusing a larger value.
    per_page = min(_positive_int(request, "per_page", DEFAULT_PER_PAGE), MAX_PER_PAGE)
    qs = _filtered(request, spec)
    ordering = _ordering(request)
    signature = (
        spec.key,
        per_page,
        *sorted((k, tuple(v)) for k, v in request.query.items() if k not in {"page", "per_page"}),
    )
    count = HINTS.count(signature, qs.count)
    start = (page - 1) * per_page
    boundary = HINTS.boundary(signature, page - 1) if ordering == ["pk"] else None
    if start >= count:
        rows = []
    elif boundary is not None:
        rows = list(qs.filter(pk__gt=boundary).order_by("pk")[:per_page])
    else:
        rows = list(qs.order_by(*ordering)[start : start + per_page])
    if rows and ordering == ["pk"]:
        HINTS.remember(signature, page, rows[-1].pk, count)
    meta = {
        "count": count,
        "page_count": math.ceil(count / per_page) if count else 0,
        "page_number": page,
        "page_size": per_page,
    }
    return Response.json(_page_payload(request, spec, rows, meta))


def resource_get(request: Request, resource: str, record_id: str, fmt: str = "") -> Response:
    """GET /api/v1/<resource>/<id>[.json]"""
    spec = _resource(resource)
    record = storage.record_get(
        system=SYSTEM, object_type=spec.key, record_id=id_value(record_id) or 0
    )
    if record is None:
        raise SandboxError(404, "not_found", f"{spec.model_name} {record_id} not found")
    meta = {"count": 1, "page_count": 1, "page_number": 1, "page_size": 1}
    return Response.json(_page_payload(request, spec, [record], meta))


# -- workspace writes --------------------------------------------------------------------------
def _validation(field: str, message: str) -> SandboxError:
    return SandboxError(422, "validation", message, fields=[field])


def workspace_attributes(body: Any, *, creating: bool) -> dict[str, Any]:
    """The checked attributes of {"workspace": {...}}; raises Kantata's 400/422 errors."""
    if not isinstance(body, dict) or not isinstance(body.get("workspace"), dict):
        raise _argument_error("param is missing or the value is empty: workspace")
    unknown = set(body) - {"workspace"}
    if unknown:
        raise _argument_error(f"unknown parameters: {', '.join(sorted(unknown))}")
    attributes = body["workspace"]
    cleaned: dict[str, Any] = {}
    for name, value in attributes.items():
        kind = WORKSPACE_FIELDS.get(name)
        if kind is None:
            raise _validation(name, f"unknown attribute '{name}' for Workspace.")
        cleaned[name] = _attribute_clean(name, kind, value)
    for name in WORKSPACE_REQUIRED:
        if (creating and not cleaned.get(name)) or (name in cleaned and not cleaned[name]):
            raise _validation(name, f"{name.capitalize()} can't be blank")
    start, due = cleaned.get("start_date"), cleaned.get("due_date")
    if start and due and due < start:
        raise _validation("due_date", "Due date must be on or after the start date")
    return cleaned


def _attribute_clean(name: str, kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _validation(name, f"{name} must be true or false")
        return value
    if kind == "cents":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _validation(name, f"{name} must be a non-negative integer number of cents")
        return value
    if not isinstance(value, str):
        raise _validation(name, f"{name} must be a string")
    if kind == "date":
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise _validation(name, f"{name} is not a valid date (YYYY-MM-DD)") from None
    if kind == "currency" and value not in CURRENCIES:
        raise _validation(name, f"Currency {value!r} is not supported")
    if len(value) > 255:
        raise _validation(name, f"{name} is too long (maximum is 255 characters)")
    return value


def workspace_create(request: Request, fmt: str = "") -> Response:
    """POST /api/v1/workspaces[.json]. No idempotency key: a retry creates a second workspace
    unless the caller looks it up by external_reference first (as a real Kantata would)."""
    cleaned = workspace_attributes(request.json(), creating=True)
    reference = cleaned.pop("external_reference", None)
    data = {
        "archived": False,
        "budgeted": False,
        **{k: v for k, v in cleaned.items() if v is not None},
    }
    try:
        record = storage.record_create(
            system=SYSTEM, object_type="workspaces", data=data, external_id=reference
        )
    except IntegrityError:
        raise _validation(
            "external_reference", "External reference has already been taken"
        ) from None
    spec = RESOURCES["workspaces"]
    meta = {"count": 1, "page_count": 1, "page_number": 1, "page_size": 1}
    return Response.json(_page_payload(request, spec, [record], meta))


def workspace_update(request: Request, record_id: str, fmt: str = "") -> Response:
    """PUT /api/v1/workspaces/<id>[.json]"""
    spec = RESOURCES["workspaces"]
    record = storage.record_get(
        system=SYSTEM, object_type=spec.key, record_id=id_value(record_id) or 0
    )
    if record is None:
        raise SandboxError(404, "not_found", f"Workspace {record_id} not found")
    cleaned = workspace_attributes(request.json(), creating=False)
    if "external_reference" in cleaned:
        reference = cleaned.pop("external_reference")
        if reference != record.external_id:
            record.external_id = reference
            try:
                record.save(using="sandbox", update_fields=["external_id"])
            except IntegrityError:
                raise _validation(
                    "external_reference", "External reference has already been taken"
                ) from None
    storage.record_update(record=record, changes=cleaned)
    meta = {"count": 1, "page_count": 1, "page_number": 1, "page_size": 1}
    return Response.json(_page_payload(request, spec, [record], meta))


# -- change feed -------------------------------------------------------------------------------
def change_events(request: Request, fmt: str = "") -> Response:
    """GET /api/v1/change_events?since=<cursor>&per_page=: changes after the cursor, oldest first.

    Events are kept EVENT_RETENTION_DAYS; a cursor older than the oldest kept event answers
    410 with type "cursor_expired" (resync by updated_after, then follow the feed again).
    """
    per_page = min(_positive_int(request, "per_page", MAX_PER_PAGE), MAX_PER_PAGE)
    raw = request.param("since")
    since = None
    if raw not in (None, ""):
        since = id_value(raw)
        if since is None:
            raise _argument_error(f"since must be a cursor returned by this feed, got {raw!r}")
    storage.events_prune(
        system=SYSTEM, older_than=timezone.now() - dt.timedelta(days=EVENT_RETENTION_DAYS)
    )
    if since == 0:
        since = None  # "0": from the oldest event still kept
    oldest = storage.events_oldest_id(system=SYSTEM)
    expired = (
        since is not None
        and (oldest is None or since < oldest)
        and not storage.event_exists(system=SYSTEM, event_id=since)
    )
    if expired and oldest is not None:
        raise SandboxError(
            410,
            "cursor_expired",
            f"Change events are kept {EVENT_RETENTION_DAYS} days; cursor {since} has expired",
        )
    types = request.param("subject_type")
    events = storage.events_since(
        system=SYSTEM,
        after_id=since,
        limit=per_page,
        object_types=types.split(",") if types else None,
    )
    next_cursor = str(events[-1].pk) if events else (str(since) if since is not None else None)
    return Response.json(
        {
            "count": len(events),
            "results": [{"key": "change_events", "id": str(e.pk)} for e in events],
            "change_events": {
                str(e.pk): {
                    "id": str(e.pk),
                    "subject_type": RESOURCES[e.object_type].model_name
                    if e.object_type in RESOURCES
                    else e.object_type,
                    "subject_id": str(e.record_id),
                    "change_type": e.action,
                    "occurred_at": kantata_time(e.occurred_at),
                    "changes": e.data.get("changes", {}),
                }
                for e in events
            },
            "meta": {"next_cursor": next_cursor, "has_more": len(events) == per_page},
        }
    )
