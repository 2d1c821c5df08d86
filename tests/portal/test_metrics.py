"""/metrics answers a scraper with the token or an ops user, and nobody else."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from sync.pipeline.exceptions import Failure, exception_items_raise

pytestmark = pytest.mark.django_db


def test_an_anonymous_request_gets_no_metrics(client, settings):
    settings.METRICS_TOKEN = "scrape-me-please"
    response = client.get(reverse("metrics"))
    assert response.status_code == 403
    wrong = client.get(reverse("metrics"), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403


def test_a_scraper_with_the_token_reads_open_exceptions_by_queue(client, settings):
    settings.METRICS_TOKEN = "scrape-me-please"
    exception_items_raise(failures=[
        Failure(record_key=f"psa:time_entry:{n}", stage="validate", queue="time_and_expense",
                code="PERIOD_CLOSED", message="closed") for n in range(3)
    ], now=timezone.now())
    response = client.get(reverse("metrics"), headers={"Authorization": "Bearer scrape-me-please"})
    assert response.status_code == 200
    assert 'ledgerbridge_open_exceptions{queue="time_and_expense"} 3.0' in response.content.decode()


def test_without_a_token_configured_only_ops_users_read_metrics(client, settings, role_user):
    settings.METRICS_TOKEN = ""
    assert client.get(reverse("metrics"), headers={"Authorization": "Bearer "}).status_code == 403
    client.force_login(role_user("finance"))
    assert client.get(reverse("metrics")).status_code == 403
    client.force_login(role_user("integration_ops", username="ops"))
    assert client.get(reverse("metrics")).status_code == 200
