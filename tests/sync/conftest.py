"""Fixtures for canonical-model tests: a request user simple-history sees, history lookups."""

from __future__ import annotations

import pytest
from simple_history.models import HistoricalRecords


@pytest.fixture
def request_user(rf, django_user_model):
    """Make simple-history see a request by `alice`, as HistoryRequestMiddleware would."""
    user = django_user_model.objects.create_user(username="alice", password="unused-in-tests")
    request = rf.get("/")
    request.user = user
    HistoricalRecords.context.request = request
    yield user
    del HistoricalRecords.context.request


@pytest.fixture
def history_of():
    """`history_of(model, records)`: the history rows of `records`, oldest first."""

    def rows(model, records) -> list:
        pk = model._meta.pk.attname
        return list(
            model.history.filter(**{f"{pk}__in": [r.pk for r in records]}).order_by(
                "history_date", "history_id"
            )
        )

    return rows
