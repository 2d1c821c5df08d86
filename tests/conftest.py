"""Suite-wide fixtures: users per role and a line saying which database the suite runs on."""

from __future__ import annotations

import pytest
from django.db import connection


def pytest_report_header(config):
    from django.conf import settings

    vendor = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    return f"ledgerbridge database: {vendor}"


@pytest.fixture
def db_vendor(db) -> str:
    return connection.vendor
