"""Fixtures for the vendor clients' tests: the sandbox and configs the transport tests use."""

from __future__ import annotations

from tests.connectors.conftest import (  # noqa: F401 - fixtures, found by pytest by name
    sandbox_app,
    sandbox_config,
    sandbox_transport,
    sleeps,
)
