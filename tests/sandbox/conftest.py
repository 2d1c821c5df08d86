"""Fixtures for the sandbox emulators: an in-process app and client, and a real served one."""

from __future__ import annotations

import httpx
import pytest

from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.core.server import sandbox_server_start

SANDBOX_DATABASES = ["default", "sandbox"]


class SleepRecorder:
    """Stands in for time.sleep so that injected delays are observed, not waited for; `clock`
    is the app's clock, advanced by the sleeps and by `work_seconds` on every reading (the
    time the app's own work takes)."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.now = 0.0
        self.work_seconds = 0.0

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        self.now += self.work_seconds
        return self.now


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def sandbox_app(sleeps) -> SandboxApp:
    """The sandbox in-process; requests share the test's transaction on the sandbox alias."""
    return SandboxApp(
        faults=FaultBook(seed=1), manage_connections=False, sleep=sleeps, clock=sleeps.clock
    )


@pytest.fixture
def client(sandbox_app):
    with httpx.Client(
        transport=httpx.WSGITransport(app=sandbox_app), base_url="http://sandbox.test"
    ) as http:
        yield http


@pytest.fixture
def live_sandbox():
    """A real waitress server on a free loopback port (needs committed data: transaction=True)."""
    running = sandbox_server_start(app=SandboxApp(faults=FaultBook(seed=1)))
    yield running
    running.stop()
