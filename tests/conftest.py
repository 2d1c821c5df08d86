"""Suite-wide fixtures: users per role, a real Celery worker, and the database the suite runs on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def pytest_runtest_setup(item):
    """Integration tests need the real services `make test` starts; without them they fail
    (never skip) with a message saying what to do."""
    if item.get_closest_marker("integration") and not os.environ.get("LEDGERBRIDGE_TEST_SERVICES"):
        pytest.fail(
            "Needs the PostgreSQL and Redis that `make test` starts: run `make test`, or "
            "deselect with -m 'not integration' for a quick SQLite pass.",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _shared_oauth_tokens_forgotten():
    """Each test starts with no client-credentials token cached in the process."""
    from sync.connectors.auth import _shared_tokens

    _shared_tokens.clear()
    yield
    _shared_tokens.clear()


def pytest_report_header(config):
    vendor = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return f"ledgerbridge database: {vendor}"


@pytest.fixture
def role_user(db, django_user_model):
    """Make a user holding one role: `role_user("finance")`."""
    from django.contrib.auth.models import Group

    def make(role: str, **extra):
        user = django_user_model.objects.create_user(
            username=extra.pop("username", f"{role}_user"), password="unused-in-tests", **extra
        )
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def eager_celery():
    """Work a request queues runs in the request, not on a broker. The Celery app reads Django
    settings under the CELERY namespace, so the key carries the prefix: neither
    `conf.task_always_eager = True` nor `conf.update(task_always_eager=True)` reaches it."""
    from portal.celery import app

    before = app.conf.task_always_eager
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True)
    assert app.conf.task_always_eager
    yield
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=before)


def _database_url(alias: str) -> str:
    """The URL of the *test* database pytest-django created for `alias`, for child processes."""
    from django.db import connections

    params = connections[alias].settings_dict
    if params["ENGINE"].endswith("sqlite3"):
        raise RuntimeError("A real worker needs PostgreSQL: run the suite with `make test`.")
    return f"postgres://{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"


@pytest.fixture
def celery_worker_process(transactional_db) -> Iterator[subprocess.Popen]:
    """A real Celery worker process on the test databases and the Redis `make test` started."""
    if not os.environ.get("LEDGERBRIDGE_TEST_SERVICES"):
        pytest.fail("This test needs the PostgreSQL and Redis that `make test` starts.")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=_database_url("default"),
        SANDBOX_DATABASE_URL=_database_url("sandbox"),
        REDIS_URL=settings.CELERY_BROKER_URL,
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            "2",
            "--queues",
            "celery,events",
            "--hostname",
            f"test-worker-{os.getpid()}@%h",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    time.sleep(0.5)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
