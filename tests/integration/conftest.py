"""Fixtures for tests that need real processes: Celery workers we can kill, a served sandbox
that counts what it answered."""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from django.conf import settings

from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook, FaultDecision
from sandbox.core.server import RunningSandbox, sandbox_server_start
from tests.integration.workers import CeleryWorkers


def database_url_of(alias: str) -> str:
    """The URL of the test database pytest-django created for `alias`, for child processes."""
    from django.db import connections

    params = connections[alias].settings_dict
    if params["ENGINE"].endswith("sqlite3"):
        raise RuntimeError("Real workers need PostgreSQL: run the suite with `make test`.")
    user = params["USER"] + (f":{params['PASSWORD']}" if params.get("PASSWORD") else "")
    return f"postgres://{user}@{params['HOST']}:{params['PORT']}/{params['NAME']}"


# -- the sandbox, served, counting -----------------------------------------------------------
class CountingFaultBook(FaultBook):
    """A FaultBook that also counts the slow answers it decided on."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.slow = 0
        self._count_lock = threading.Lock()

    def decide(self, *, system: str, method: str, target: str, body: bytes) -> FaultDecision:
        decision = super().decide(system=system, method=method, target=target, body=body)
        slow_seconds = self.config(system).slow_seconds
        if slow_seconds and decision.delay_seconds >= slow_seconds:
            with self._count_lock:
                self.slow += 1
        return decision


class CountingSandboxApp(SandboxApp):
    """The sandbox app, counting answers by status, dropped answers and requests in flight."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.statuses: Counter[int] = Counter()
        self.dropped = 0
        self.in_flight = 0
        self._count_lock = threading.Lock()

    def _respond(self, environ):  # the one place both the status and a drop are known
        with self._count_lock:
            self.in_flight += 1
        try:
            response, dropped = super()._respond(environ)
        finally:
            with self._count_lock:
                self.in_flight -= 1
        with self._count_lock:
            if dropped is not None:
                self.dropped += 1
            else:
                self.statuses[response.status] += 1
        return response, dropped

    @property
    def requests(self) -> int:
        return sum(self.statuses.values()) + self.dropped


@pytest.fixture
def served_sandbox(transactional_db) -> Iterator[RunningSandbox]:
    """The sandbox on a free loopback port, on the PostgreSQL `sandbox` test database.

    Threads: enough that requests sleeping in an injected delay do not starve the others (the
    NetSuite concurrency limit, not the thread pool, is what answers 429).
    """
    app = CountingSandboxApp(faults=CountingFaultBook(seed=2026))
    running = sandbox_server_start(app=app, threads=16)
    # Every dropped answer is a waitress warning ("returned too few bytes"): expected here.
    waitress_log = logging.getLogger("waitress")
    level = waitress_log.level
    waitress_log.setLevel(logging.ERROR)
    try:
        yield running
    finally:
        running.stop()
        waitress_log.setLevel(level)


@pytest.fixture
def celery_workers(transactional_db) -> Iterator[CeleryWorkers]:
    """Nothing started yet: the test starts (and kills) workers. All are stopped after it.

    The workers' hard task time limit is short so that deliveries a killed worker held in
    flight are reclaimed within the test (outbox.claims.IN_FLIGHT_TIMEOUT is twice that limit).
    """
    if not os.environ.get("LEDGERBRIDGE_TEST_SERVICES"):
        pytest.fail("This test needs the PostgreSQL and Redis that `make test` starts.")
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_of("default"),
        SANDBOX_DATABASE_URL=database_url_of("sandbox"),
        REDIS_URL=settings.CELERY_BROKER_URL,
        CELERY_TASK_SOFT_TIME_LIMIT="15",
        CELERY_TASK_TIME_LIMIT="20",
    )
    workers = CeleryWorkers(env=env, concurrency=2)
    try:
        yield workers
    finally:
        workers.stop()
