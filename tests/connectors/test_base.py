"""Shared connector types: config checks, the error type, pull positions, correlation scope."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sync.connectors.base import (
    CONFIGURATION,
    ConnectionConfig,
    TransportError,
    correlation_id_var,
    correlation_scope,
    position_max,
)


@pytest.mark.parametrize(
    ("current", "candidate", "expected"),
    [
        (None, "2026-01-01T10:00:00Z", "2026-01-01T10:00:00Z"),
        ("2026-01-01T10:00:00Z", None, "2026-01-01T10:00:00Z"),
        (
            "2026-01-01T10:00:00.000+0000",
            "2026-01-01T09:30:00.000-0100",
            "2026-01-01T09:30:00.000-0100",
        ),
        ("2026-01-01T10:00:00Z", "2026-01-01T09:00:00Z", "2026-01-01T10:00:00Z"),
        ("2026-01-01T10:00:00Z", "garbage", "2026-01-01T10:00:00Z"),
        ("2026-01-01T10:00:00Z", "2026-01-02T00:00:00", "2026-01-01T10:00:00Z"),  # no offset
    ],
)
def test_the_pull_position_is_the_later_instant_whatever_the_offset_notation(
    current, candidate, expected
):
    assert position_max(current, candidate) == expected


@pytest.mark.parametrize(
    "overrides",
    [{"max_concurrency": 0}, {"rate_per_second": 0}, {"timeout_seconds": 0}],
)
def test_a_config_that_could_never_send_is_refused(overrides):
    with pytest.raises(ValueError, match="must be"):
        ConnectionConfig(system="x", base_url="https://x", **overrides)


def test_a_config_is_built_from_a_connection_row():
    row = SimpleNamespace(
        dialect="kantata",
        base_url="https://api.example/api/v1",
        credentials_dict=lambda: {"access_token": "t"},
        timeout_seconds=15,
        max_concurrency=2,
        rate_per_second=None,
    )
    config = ConnectionConfig.from_connection(row)
    assert (config.system, config.timeout_seconds, config.max_concurrency) == ("kantata", 15.0, 2)
    assert config.credentials == {"access_token": "t"}


def test_an_unknown_failure_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown failure kind"):
        TransportError(kind="weird", message="x")


def test_a_transport_error_reads_as_kind_status_code_and_target():
    error = TransportError(
        kind=CONFIGURATION,
        status=401,
        vendor_code="INVALID_LOGIN",
        message="bad token",
        method="GET",
        url="https://x/y",
    )
    assert str(error) == "configuration 401 INVALID_LOGIN GET https://x/y: bad token"
    assert not error.retryable


def test_the_correlation_scope_is_restored_on_exit():
    with correlation_scope("outer"):
        with correlation_scope("inner"):
            assert correlation_id_var.get() == "inner"
        assert correlation_id_var.get() == "outer"
    assert correlation_id_var.get() is None
