"""Actions on a whole root-cause group, large enough to need a worker: start, run, resume.

A group of up to INLINE_LIMIT items is acted on in the request. A larger one becomes an
`ExceptionGroupJob` that a Celery worker runs in chunks of CHUNK items with the same services
the page calls inline (`exception_items_replay`, `exception_items_close`); the page shows its
progress and survives a reload. Asking again while the job is active returns the same job, and
a job that runs twice (a redelivered task) acts on no item twice: each chunk starts after the
last finished one and touches only items still open. A job acts within its requester's scope
(queues and legal entities, `portal.exception_scope`), kept on the job: one active job per
(group, action, scope).
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from portal.models import ExceptionGroupJob
from sync.errors import DomainError
from sync.pipeline.exception_items import ExceptionActionRefused, exception_items_close
from sync.pipeline.exception_queries import ExceptionScope
from sync.pipeline.exception_summary import exception_summary_refresh_soon
from sync.pipeline.models import ExceptionItem
from sync.pipeline.replay import exception_items_replay

logger = logging.getLogger(__name__)

INLINE_LIMIT = 200
CHUNK = 500
ACTIONS = {"replay": None, "resolve": "resolved", "ignore": "ignored"}


def _group_items(*, root_cause: str, scope: ExceptionScope):
    return scope.items().filter(root_cause=root_cause, status__in=ExceptionItem.OPEN_STATUSES)


def _job_scope(job: ExceptionGroupJob) -> ExceptionScope:
    entities = job.legal_entities
    return ExceptionScope(
        queues=tuple(job.queues), legal_entities=None if entities is None else tuple(entities)
    )


def exception_group_job_start(
    *, root_cause: str, action: str, reason: str, scope: ExceptionScope, user
) -> ExceptionGroupJob:
    """The active job for (group, action), or a new one queued for a worker after commit.

    Raises ExceptionActionRefused for an unknown action, or resolve/ignore without a reason.
    """
    if action not in ACTIONS:
        raise ExceptionActionRefused(f"Unknown action {action!r}.")
    reason = reason.strip()
    if ACTIONS[action] and not reason:
        raise ExceptionActionRefused("Say why: a reason is required.")
    active = ExceptionGroupJob.objects.filter(
        root_cause=root_cause,
        action=action,
        scope=scope.key,
        status__in=ExceptionGroupJob.ACTIVE,
    )
    try:
        with transaction.atomic():
            job = active.first()
            if job is not None:
                return job
            job = ExceptionGroupJob.objects.create(
                root_cause=root_cause,
                action=action,
                reason=reason,
                queues=list(scope.queues),
                legal_entities=(
                    None if scope.legal_entities is None else list(scope.legal_entities)
                ),
                scope=scope.key,
                requested_by=user,
                total=_group_items(root_cause=root_cause, scope=scope).count(),
            )
            transaction.on_commit(lambda: exception_group_job_enqueue(job.pk))
    except IntegrityError:  # someone started the same job a moment ago: show theirs
        return active.get()
    return job


def exception_group_job_enqueue(job_id: int) -> None:
    """Hand the job to a worker; a broker that is down leaves it queued (the page says so)."""
    from portal.tasks import exception_group_job_run_task

    try:
        exception_group_job_run_task.delay(job_id)
    except BrokerUnavailable as exc:
        logger.warning("exception group job %s not enqueued (%s): it waits", job_id, exc)


def exception_group_job_run(*, job_id: int) -> ExceptionGroupJob | None:
    """Run (or resume) a job to the end, a chunk at a time. Idempotent; None if it is gone."""
    claimed = ExceptionGroupJob.objects.filter(
        pk=job_id, status__in=ExceptionGroupJob.ACTIVE
    ).update(status=ExceptionGroupJob.Status.RUNNING)
    job = ExceptionGroupJob.objects.filter(pk=job_id).select_related("requested_by").first()
    if job is None or not claimed:
        return job
    status = ACTIONS[job.action]
    scope = _job_scope(job)
    try:
        while True:
            chunk = list(
                _group_items(root_cause=job.root_cause, scope=scope)
                .filter(pk__gt=job.last_item_id)
                .order_by("pk")[:CHUNK]
            )
            if not chunk:
                break
            if status is None:
                resolved = exception_items_replay(items=chunk, user=job.requested_by).resolved
            else:
                resolved = exception_items_close(
                    items=chunk, status=status, reason=job.reason, user=job.requested_by
                )
            job.done += len(chunk)
            job.resolved += resolved
            job.last_item_id = chunk[-1].pk
            job.total = max(job.total, job.done)
            job.save(update_fields=["done", "resolved", "last_item_id", "total"])
            exception_summary_refresh_soon()  # coalesced: the cards follow the job's progress
    except DomainError as refused:
        job.status, job.error = ExceptionGroupJob.Status.FAILED, str(refused)
    else:
        job.status = ExceptionGroupJob.Status.DONE
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])
    return job
