"""Fixtures for connector tests: the sandbox in-process, configs built from its credentials,
and a recording fake of a vendor for exact edge cases (`httpx.MockTransport`)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sync.connectors.base import ConnectionConfig

SANDBOX_DATABASES = ["default", "sandbox"]
SANDBOX_ROOT = "http://sandbox.test"


class SleepRecorder:
    """Stands in for time.sleep: waits are recorded, never slept."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def sandbox_app(sleeps) -> SandboxApp:
    """The sandbox in-process; its requests share the test's transaction on the sandbox alias."""
    return SandboxApp(faults=FaultBook(seed=1), manage_connections=False, sleep=sleeps)


@pytest.fixture
def sandbox_transport(sandbox_app) -> httpx.WSGITransport:
    return httpx.WSGITransport(app=sandbox_app)


@pytest.fixture
def sandbox_config(sandbox_app) -> Callable[..., ConnectionConfig]:
    """`sandbox_config("kantata", max_concurrency=2)`: a config from `sandbox credentials`."""

    def make(system: str, **overrides) -> ConnectionConfig:
        dialect = sandbox_app.dialect(system)
        credentials = dialect.credentials(SANDBOX_ROOT + dialect.prefix)
        base_url = credentials.pop("base_url")
        return ConnectionConfig(
            system=system,
            base_url=base_url,
            credentials={k: str(v) for k, v in credentials.items()},
            **overrides,
        )

    return make


class FakeVendor:
    """A scripted vendor: `answers` are httpx.Response objects or exceptions, served in order
    (the last one repeats). Every request is kept for assertions."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return answer(request)
        return answer

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def mock_config(**overrides) -> ConnectionConfig:
    values = {"system": "fake", "base_url": "https://vendor.example/api", **overrides}
    return ConnectionConfig(**values)
