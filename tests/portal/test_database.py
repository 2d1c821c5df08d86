"""The suite runs on the database `make test` started; this says which, and checks it is real."""

from __future__ import annotations

import os

import pytest
from django.db import connection, connections


@pytest.mark.integration
@pytest.mark.django_db(databases=["default", "sandbox"])
def test_make_test_runs_the_suite_on_postgresql_for_both_databases():
    if not os.environ.get("LEDGERBRIDGE_TEST_SERVICES"):
        pytest.fail("Run the suite through `make test`, which starts PostgreSQL and Redis.")
    assert connection.vendor == "postgresql"
    assert connections["sandbox"].vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('server_version_num')::int")
        (version,) = cursor.fetchone()
    print(f"database vendor: postgresql {version}")
    assert version >= 150000
