"""A group action too large for one request runs in the worker with its progress on a page that
survives a reload; asking twice, or a redelivered task, acts on no item twice."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from portal.exception_jobs import INLINE_LIMIT, exception_group_job_run, exception_group_job_start
from portal.models import ExceptionGroupJob
from sync.pipeline.exception_queries import ExceptionScope
from sync.pipeline.models import ExceptionItem
from tests.portal.test_exceptions_pages import raise_items


@pytest.fixture
def finance(client, django_user_model):
    user = django_user_model.objects.create_user("fin-jobs", password="unused")
    user.groups.add(Group.objects.get(name="finance"))
    client.force_login(user)
    return user


def _root(items: list[ExceptionItem]) -> str:
    return items[0].root_cause


@pytest.mark.django_db
@pytest.mark.usefixtures("eager_celery")
def test_a_large_group_is_ignored_by_the_worker_and_the_page_shows_it_done(
    client, finance, django_capture_on_commit_callbacks
):
    items = raise_items(INLINE_LIMIT + 30, cause="W-big")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/exceptions/groups/{_root(items)}/act/",
            {"action": "ignore", "reason": "Leaver: written off."},
        )
    job = ExceptionGroupJob.objects.get()
    assert response.status_code == 302
    assert response.url == f"/exceptions/jobs/{job.pk}/"
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.resolved) == ("done", 230, 230, 230)
    assert ExceptionItem.objects.filter(status="ignored").count() == INLINE_LIMIT + 30
    page = client.get(response.url).content.decode()
    assert "230 of 230 items" in page
    assert "hx-get" not in page  # nothing left to poll


@pytest.mark.django_db
def test_asking_again_while_a_job_is_active_shows_the_same_job(finance):
    items = raise_items(3, cause="W-again")
    first = exception_group_job_start(
        root_cause=_root(items),
        action="resolve",
        reason="Fixed in HR.",
        scope=ExceptionScope(queues=("time_and_expense",)),
        user=finance,
    )
    second = exception_group_job_start(
        root_cause=_root(items),
        action="resolve",
        reason="Fixed in HR.",
        scope=ExceptionScope(queues=("time_and_expense",)),
        user=finance,
    )
    assert first.pk == second.pk
    assert ExceptionGroupJob.objects.count() == 1


@pytest.mark.django_db
def test_a_job_resumes_after_its_last_chunk_and_a_second_run_changes_nothing(finance):
    items = raise_items(30, cause="W-resume")
    job = exception_group_job_start(
        root_cause=_root(items),
        action="ignore",
        reason="Written off.",
        scope=ExceptionScope(queues=("time_and_expense",)),
        user=finance,
    )
    # As if a worker had closed the first ten and died before finishing.
    ExceptionItem.objects.filter(pk__in=[i.pk for i in items[:10]]).update(status="ignored")
    ExceptionGroupJob.objects.filter(pk=job.pk).update(
        status="running", done=10, last_item_id=items[9].pk
    )
    exception_group_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.done) == ("done", 30)
    closed_rows = ExceptionItem.history.filter(status="ignored").count()
    assert closed_rows == 20  # the job wrote one history row per item it closed
    exception_group_job_run(job_id=job.pk)  # a redelivered task
    assert ExceptionItem.history.filter(status="ignored").count() == closed_rows


@pytest.mark.django_db
def test_the_progress_fragment_keeps_polling_while_the_job_waits(client, finance):
    items = raise_items(2, cause="W-poll")
    job = exception_group_job_start(
        root_cause=_root(items),
        action="replay",
        reason="",
        scope=ExceptionScope(queues=("time_and_expense",)),
        user=finance,
    )
    fragment = client.get(f"/exceptions/jobs/{job.pk}/", HTTP_HX_REQUEST="true")
    text = fragment.content.decode()
    assert "<html" not in text
    assert 'hx-trigger="every 1s"' in text
    assert "Waiting for a worker" in text


@pytest.mark.django_db
def test_a_group_resolve_without_a_reason_starts_nothing(client, finance):
    items = raise_items(INLINE_LIMIT + 1, cause="W-noreason")
    response = client.post(
        f"/exceptions/groups/{_root(items)}/act/",
        {"action": "resolve", "reason": " "},
        follow=True,
    )
    assert "a reason is required" in response.content.decode()
    assert not ExceptionGroupJob.objects.exists()
    assert ExceptionItem.objects.filter(status="open").count() == INLINE_LIMIT + 1
