"""Asynchronous requests (`Prefer: respond-async`) and `X-NetSuite-Idempotency-Key`.

As in "Asynchronous Request Processing" of the REST guide: the answer is 202 with a `Location`
of a job (`/services/rest/async/v1/job/{id}`); the job has one task whose `result` is the
response the synchronous request would have had (a 204 + Location for a create). The sandbox
runs the request at once, inside the 202's transaction, so a job is already `completed` when
the client first looks.

An idempotency key names the job: a request repeating a key gets the same 202 (the same job)
and runs nothing, whatever its body, so a retried create never writes twice. The key row is
inserted before the work in the same transaction: a concurrent request with the same key waits
on the unique index (PostgreSQL) or the write lock (SQLite) and then answers with the winner's
job. Keys are kept for `KEY_RETENTION` and pruned on use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson
from django.db import IntegrityError, transaction
from django.utils import timezone

from sandbox import storage
from sandbox.core.protocol import Request, Response, SandboxError
from sandbox.models import SandboxIdempotencyKey
from sandbox.netsuite.schema import ASYNC_JOB_TYPE, SYSTEM
from sandbox.router import SANDBOX_DB

IDEMPOTENCY_HEADER = "x-netsuite-idempotency-key"
KEY_RETENTION = dt.timedelta(days=7)
MAX_KEY_LENGTH = 128
SINGULAR = "application/vnd.oracle.resource+json; type=singular"
COLLECTION = "application/vnd.oracle.resource+json; type=collection"


def wants_async(request: Request) -> bool:
    preferences = (request.header("prefer") or "").lower()
    return "respond-async" in [part.strip() for part in preferences.split(",")]


def _job_url(request: Request, job_id: int) -> str:
    return f"{request.base_url}/services/rest/async/v1/job/{job_id}"


def _accepted(location: str) -> Response:
    headers = {"Location": location, "Preference-Applied": "respond-async"}
    return Response.empty(202, headers=headers)


def async_run(
    request: Request,
    handler: Callable[..., Response],
    params: dict[str, str],
    render_error: Callable[[Request, SandboxError], Response],
    *,
    now: dt.datetime | None = None,
) -> Response:
    """Run `handler` as an async job; answer 202 + Location (the same job for a repeated key)."""
    key = request.header(IDEMPOTENCY_HEADER)
    if key is not None and not 0 < len(key.strip()) <= MAX_KEY_LENGTH:
        raise SandboxError(
            400,
            "INVALID_HEADER",
            f"The {IDEMPOTENCY_HEADER} header must be 1 to {MAX_KEY_LENGTH} characters.",
        )
    moment = now or timezone.now()
    with transaction.atomic(using=SANDBOX_DB):
        claim = None
        if key is not None:
            SandboxIdempotencyKey.objects.using(SANDBOX_DB).filter(
                system=SYSTEM, created_at__lt=moment - KEY_RETENTION
            ).delete()
            try:
                with transaction.atomic(using=SANDBOX_DB):
                    claim = SandboxIdempotencyKey.objects.using(SANDBOX_DB).create(
                        system=SYSTEM,
                        key=key,
                        request_fingerprint=storage.request_fingerprint(
                            method=request.method, path=request.path, body=request.body
                        ),
                        status_code=202,
                        response_headers={},
                        response_body=b"",
                        created_at=moment,
                    )
            except IntegrityError:
                existing = storage.idempotency_lookup(system=SYSTEM, key=key)
                if existing is None:  # pragma: no cover - pruned between insert and read
                    raise
                return _accepted(existing.response_headers["Location"])
        job = storage.record_create(
            system=SYSTEM,
            object_type=ASYNC_JOB_TYPE,
            data={"progress": "pending", "completed": False},
            status="pending",
            now=moment,
            event=False,
        )
        result = _execute(request, handler, params, render_error)
        progress = "succeeded" if result.status < 400 else "failed"
        storage.record_update(
            record=job,
            changes={
                "progress": progress,
                "completed": True,
                "method": request.method,
                "path": request.path,
                "idempotencyKey": key,
                "result": {
                    "status": result.status,
                    "headers": result.headers,
                    "body": result.body.decode(),
                },
            },
            status=progress,
            now=moment,
            event=False,
        )
        location = _job_url(request, job.pk)
        if claim is not None:
            claim.response_headers = {"Location": location}
            claim.save(using=SANDBOX_DB, update_fields=["response_headers"])
    return _accepted(location)


def _execute(request, handler, params, render_error) -> Response:
    """The synchronous answer; a refused request rolls back its own writes only."""
    try:
        with transaction.atomic(using=SANDBOX_DB):
            return handler(request, **params)
    except SandboxError as exc:
        response = render_error(request, exc)
        response.headers.update(exc.headers)
        return response


# -- job resources -----------------------------------------------------------------------------
def _job(job_id: str):
    record = (
        storage.record_get(system=SYSTEM, object_type=ASYNC_JOB_TYPE, record_id=int(job_id))
        if job_id.isdigit()
        else None
    )
    if record is None:
        raise SandboxError(404, "NONEXISTENT_ID", f"The async job {job_id} does not exist.")
    return record


def _state(record) -> dict[str, Any]:
    return {"completed": record.data.get("completed", False), "progress": record.data["progress"]}


def job_get(request: Request, job: str) -> Response:
    record = _job(job)
    url = _job_url(request, record.pk)
    body = {"links": [{"rel": "self", "href": url}], "id": str(record.pk), **_state(record)}
    return Response.json(body, headers={"Content-Type": SINGULAR})


def job_tasks(request: Request, job: str) -> Response:
    record = _job(job)
    url = _job_url(request, record.pk) + "/task"
    item = {"links": [{"rel": "self", "href": f"{url}/{record.pk}"}], "id": str(record.pk)}
    body = {
        "links": [{"rel": "self", "href": url}],
        "count": 1,
        "hasMore": False,
        "items": [item],
        "offset": 0,
        "totalResults": 1,
    }
    return Response.json(body, headers={"Content-Type": COLLECTION})


def _task(job: str, task: str):
    record = _job(job)
    if task != str(record.pk):
        raise SandboxError(404, "NONEXISTENT_ID", f"The task {task} does not exist.")
    return record


def job_task(request: Request, job: str, task: str) -> Response:
    record = _task(job, task)
    url = f"{_job_url(request, record.pk)}/task/{record.pk}"
    links = [{"rel": "self", "href": url}, {"rel": "related", "href": f"{url}/result"}]
    body = {"links": links, "id": str(record.pk), **_state(record)}
    return Response.json(body, headers={"Content-Type": SINGULAR})


def job_task_result(request: Request, job: str, task: str) -> Response:
    """The response of the request the job ran (status, Location, body) as it was answered."""
    record = _task(job, task)
    result = record.data.get("result")
    if result is None:  # pragma: no cover - jobs complete in their own transaction
        raise SandboxError(404, "NONEXISTENT_ID", "The task has no result yet.")
    body = result["body"].encode()
    if body:
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:  # pragma: no cover - handlers answer JSON
            body = b""
    return Response(status=result["status"], body=body, headers=dict(result["headers"]))
