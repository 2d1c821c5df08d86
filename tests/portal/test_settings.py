"""Production settings pass Django's deployment checks; missing secrets stop start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    # The browser tests' async-unsafe switch and any keys of the test run stay out of it.
    dropped = {"SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 20 + "a-long-random-production-secret-for-the-check-only",
    "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "ALLOWED_HOSTS": "ledgerbridge.example.com",
}


def test_check_deploy_reports_no_issues_with_the_documented_production_variables(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env_overrides={**PRODUCTION, "LEDGERBRIDGE_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_without_a_secret_key_production_refuses_to_start(tmp_path):
    overrides = {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"}
    result = manage("check", env_overrides={**overrides, "LEDGERBRIDGE_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_without_an_encryption_key_production_refuses_to_start(tmp_path):
    overrides = {k: v for k, v in PRODUCTION.items() if k != "FIELD_ENCRYPTION_KEY"}
    result = manage("check", env_overrides={**overrides, "LEDGERBRIDGE_VAR_DIR": str(tmp_path)})
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY must be set" in result.stderr


def test_the_models_and_the_migrations_agree(tmp_path):
    result = manage(
        "makemigrations",
        "--check",
        "--dry-run",
        env_overrides={"LEDGERBRIDGE_VAR_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_debug_refuses_to_serve_a_real_host_name(tmp_path):
    result = manage(
        "check",
        env_overrides={
            "DEBUG": "1",
            "ALLOWED_HOSTS": "ledgerbridge.example.com",
            "LEDGERBRIDGE_VAR_DIR": str(tmp_path),
        },
    )
    assert result.returncode != 0
    assert "DEBUG is on while ALLOWED_HOSTS names a non-local host" in result.stderr


def test_production_settings_do_not_install_the_sandbox(tmp_path):
    probe = (
        "from django.apps import apps; from django.conf import settings; "
        "print(apps.is_installed('sandbox'), sorted(settings.DATABASES))"
    )
    production = manage(
        "shell",
        "--no-imports",
        "-c",
        probe,
        env_overrides={**PRODUCTION, "LEDGERBRIDGE_VAR_DIR": str(tmp_path)},
    )
    assert production.returncode == 0, production.stderr
    assert production.stdout.strip() == "False ['default']"
    development = manage(
        "shell", "--no-imports", "-c", probe, env_overrides={"LEDGERBRIDGE_VAR_DIR": str(tmp_path)}
    )
    assert development.stdout.strip() == "True ['default', 'sandbox']"
