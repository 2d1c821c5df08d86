"""Kantata story writes: POST /api/v1/stories and PUT /api/v1/stories/<id> (a project's WBS).

Body `{"story": {...}}` (https://developer.kantata.com/#tag/Stories). A story belongs to a
workspace (`workspace_id`, stored in the `parent_id` column) and may sit under another story of
the same workspace (`parent_id` attribute). No idempotency key and no uniqueness on
`external_reference`, as at Kantata: a caller looks a story up by it before creating one.
"""

from __future__ import annotations

from typing import Any

from sandbox import storage
from sandbox.core.params import id_value
from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.kantata.schema import RESOURCES, SYSTEM
from sandbox.kantata.views import _attribute_clean, _page_payload, _validation

STORY_FIELDS: dict[str, str] = {
    "title": "string",
    "description": "string",
    "story_type": "string",
    "state": "string",
    "start_date": "date",
    "due_date": "date",
    "billable": "boolean",
    "external_reference": "string",
    "workspace_id": "id",
    "parent_id": "id",
}
STORY_TYPES = ("task", "deliverable", "milestone", "issue")
STATES = ("not started", "started", "completed", "blocked")


def _attributes(body: Any, *, creating: bool) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("story"), dict):
        raise SandboxError(400, "argument_error", "param is missing or the value is empty: story")
    cleaned: dict[str, Any] = {}
    for name, value in body["story"].items():
        kind = STORY_FIELDS.get(name)
        if kind is None:
            raise _validation(name, f"unknown attribute '{name}' for Story.")
        if kind == "id":
            number = None if value is None else id_value(str(value))
            if value is not None and (number is None or number < 1):
                raise _validation(name, f"{name} must be an id")
            cleaned[name] = None if value is None else str(number)
        else:
            cleaned[name] = _attribute_clean(name, kind, value)
    for name in ("title", "workspace_id") if creating else ():
        if not cleaned.get(name):
            raise _validation(name, f"{name.replace('_id', '').capitalize()} can't be blank")
    if cleaned.get("story_type") not in (None, *STORY_TYPES):
        raise _validation("story_type", f"Story type must be one of {', '.join(STORY_TYPES)}")
    if cleaned.get("state") not in (None, *STATES):
        raise _validation("state", f"State must be one of {', '.join(STATES)}")
    return cleaned


def _checked_parents(cleaned: dict[str, Any], workspace: int) -> None:
    if storage.record_get(system=SYSTEM, object_type="workspaces", record_id=workspace) is None:
        raise _validation("workspace_id", f"Workspace {workspace} does not exist")
    parent = cleaned.get("parent_id")
    if parent is not None:
        found = storage.record_get(system=SYSTEM, object_type="stories", record_id=int(parent))
        if found is None or found.parent_id != workspace:
            raise _validation("parent_id", "Parent must be a story of the same workspace")


def _answer(request: Request, record) -> Response:
    meta = {"count": 1, "page_count": 1, "page_number": 1, "page_size": 1}
    return Response.json(_page_payload(request, RESOURCES["stories"], [record], meta))


def story_create(request: Request, fmt: str = "") -> Response:
    """POST /api/v1/stories[.json]"""
    cleaned = _attributes(request.json(), creating=True)
    workspace = int(cleaned.pop("workspace_id"))
    _checked_parents(cleaned, workspace)
    data = {"story_type": "task", "state": "not started", **cleaned}
    record = storage.record_create(
        system=SYSTEM,
        object_type="stories",
        data={k: v for k, v in data.items() if v is not None},
        parent_id=workspace,
        status=data["state"],
    )
    return _answer(request, record)


def story_update(request: Request, record_id: str, fmt: str = "") -> Response:
    """PUT /api/v1/stories/<id>[.json] (a story does not move to another workspace)."""
    record = storage.record_get(
        system=SYSTEM, object_type="stories", record_id=id_value(record_id) or 0
    )
    if record is None:
        raise SandboxError(404, "not_found", f"Story {record_id} not found")
    cleaned = _attributes(request.json(), creating=False)
    cleaned.pop("workspace_id", None)
    _checked_parents(cleaned, record.parent_id)
    changes = {k: v for k, v in cleaned.items() if v is not None}
    storage.record_update(record=record, changes=changes, status=changes.get("state"))
    return _answer(request, record)
