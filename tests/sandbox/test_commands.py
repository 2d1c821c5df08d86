"""`manage.py sandbox …`: subcommand discovery, credentials, serve's fault flags."""

from __future__ import annotations

import io

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sandbox.commands import subcommands_discover
from sandbox.commands.serve import fault_flags_parse


def test_serve_and_credentials_are_discovered_as_subcommands():
    assert {"serve", "credentials"} <= set(subcommands_discover())


def test_credentials_print_each_systems_base_url_and_secrets_as_json():
    out = io.StringIO()
    call_command("sandbox", "credentials", "--port", "8123", stdout=out)
    systems = orjson.loads(out.getvalue())
    assert systems["salesforce"]["base_url"] == "http://127.0.0.1:8123/salesforce"
    assert systems["salesforce"]["token_url"].endswith("/services/oauth2/token")
    assert systems["kantata"] == {
        "base_url": "http://127.0.0.1:8123/kantata/api/v1",
        "access_token": "sandbox-kantata-token",
    }
    assert systems["scim"]["base_url"] == "http://127.0.0.1:8123/scim/v2"


def test_fault_flags_are_grouped_by_system():
    assert fault_flags_parse(["kantata:error_rate=0.1", "kantata:slow_rate=1", "*:seed=2"]) == {
        "kantata": {"error_rate": "0.1", "slow_rate": "1"},
        "*": {"seed": "2"},
    }


@pytest.mark.parametrize("flag", ["kantata", "kantata:error_rate", ":error_rate=1", "x:=1"])
def test_a_malformed_fault_flag_is_a_command_error(flag):
    with pytest.raises(CommandError):
        fault_flags_parse([flag])


def test_serve_refuses_an_unknown_fault_setting_before_it_starts_serving():
    with pytest.raises(CommandError, match="unknown fault setting"):
        call_command("sandbox", "serve", "--port", "0", "--fault", "kantata:colour=red")


@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_the_faults_subcommand_changes_a_running_sandbox(live_sandbox):
    port = live_sandbox.base_url.rsplit(":", 1)[1]
    out = io.StringIO()
    call_command(
        "sandbox",
        "faults",
        "--port",
        port,
        "--seed",
        "7",
        "--set",
        "scim:error_rate=0.5",
        stdout=out,
    )
    shown = orjson.loads(out.getvalue())
    assert shown["seed"] == 7
    assert live_sandbox.app.faults.config("scim").error_rate == 0.5
    call_command("sandbox", "faults", "--port", port, "--reset", stdout=io.StringIO())
    assert live_sandbox.app.faults.config("scim").error_rate == 0.0


def test_the_faults_subcommand_says_when_no_sandbox_answers():
    with pytest.raises(CommandError, match="no sandbox answers"):
        call_command("sandbox", "faults", "--port", "1", stdout=io.StringIO())
