"""The findings of the role-by-role security review, one test each (the four-eyes finding is in
tests/mappings/test_services.py, the webhook ones in tests/pipeline/test_webhooks.py and
test_subscriptions.py). The whole surface is walked in test_role_matrix.py."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from portal.models import WorkerHeartbeat
from sync.logging import JsonFormatter, KeyValueFormatter
from sync.redaction import MASK, value_redact
from tests import factories as f
from tests.portal.surface import COST_RATE_VALUES, surface_seed


@pytest.fixture
def staff(django_user_model):
    def make(role: str):
        user = django_user_model.objects.create_user(
            f"staff-{role}", password="unused", is_staff=True
        )
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


# 1. view-only staff could change records through the history form ----------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "model"),
    [("integration_ops", "worker"), ("mapping_admin", "project"), ("integration_ops", "timeentry")],
)
def test_a_view_only_user_cannot_change_a_record_through_its_history_form(
    client, staff, role, model
):
    record = {
        "worker": f.WorkerFactory,
        "project": f.ProjectFactory,
        "timeentry": f.TimeEntryFactory,
    }[model]()
    history = record.history.earliest("history_id")
    client.force_login(staff(role))
    url = f"/admin/sync/{model}/{record.pk}/history/{history.history_id}/"
    assert client.get(url).status_code == 200  # reading a past version stays possible
    response = client.post(
        url, {"name": "Changed through history", "hours": "99", "loaded_version": record.version}
    )
    assert response.status_code == 403
    record.refresh_from_db()
    assert record.version == 1
    assert record.history.count() == 1


@pytest.mark.django_db
def test_not_even_a_superuser_reverts_a_record_through_its_history_form(client, django_user_model):
    worker = f.WorkerFactory(name="Ada")
    first = worker.history.earliest("history_id")
    worker.name = "Ada Lovelace"
    worker.save()
    client.force_login(django_user_model.objects.create_superuser("root", "r@x.invalid", "pw"))
    page = client.get(f"/admin/sync/worker/{worker.pk}/history/{first.history_id}/")
    assert b"Revert" not in page.content
    response = client.post(
        f"/admin/sync/worker/{worker.pk}/history/{first.history_id}/",
        {"name": "Ada", "loaded_version": worker.version},
    )
    assert response.status_code == 403
    worker.refresh_from_db()
    assert worker.name == "Ada Lovelace"


# 2. cost rates leaked through payloads ---------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("page", ["inboxitem", "exceptionitem", "delivery"])
def test_integration_ops_see_payloads_with_the_cost_rate_masked(client, staff, page):
    seeded = surface_seed()
    client.force_login(staff("integration_ops"))
    body = client.get(f"/admin/pipeline/{page}/{seeded[f'pipeline.{page}'].pk}/change/")
    text = body.content.decode()
    assert body.status_code == 200
    assert not any(value in text for value in COST_RATE_VALUES)
    assert MASK in text
    assert "userName" in text or "laborCost" in text  # the rest of the payload is still shown


@pytest.mark.django_db
def test_the_history_of_an_exception_item_masks_cost_rates_in_its_payload(client, staff):
    seeded = surface_seed()
    client.force_login(staff("integration_ops"))
    text = client.get(
        f"/admin/pipeline/exceptionitem/{seeded['pipeline.exceptionitem'].pk}/history/"
    ).content.decode()
    assert not any(value in text for value in COST_RATE_VALUES)


def test_redaction_masks_credentials_always_and_cost_rates_without_the_permission():
    payload = {
        "user": "ada",
        "costRate": {"amount": "92.00", "currency": "GBP"},
        "auth": {"client_secret": "s3", "Access-Token": "t"},
        "lines": [{"laborCost": 5}],
    }
    hidden = value_redact(payload, cost_rates_visible=False)
    shown = value_redact(payload, cost_rates_visible=True)
    assert hidden == {
        "user": "ada",
        "costRate": MASK,
        "auth": {"client_secret": MASK, "Access-Token": MASK},
        "lines": [{"laborCost": MASK}],
    }
    assert shown["costRate"] == {"amount": "92.00", "currency": "GBP"}
    assert shown["auth"] == {"client_secret": MASK, "Access-Token": MASK}
    assert payload["costRate"]["amount"] == "92.00"  # the stored value is untouched


@pytest.mark.parametrize("formatter", [KeyValueFormatter(), JsonFormatter()])
def test_log_lines_mask_cost_rates_and_credentials_in_arguments_and_extras(formatter):
    record = logging.LogRecord(
        "sync.test",
        logging.WARNING,
        __file__,
        1,
        "refused %s",
        ({"costRate": {"amount": "71.43"}, "name": "Ada"},),
        None,
    )
    record.response = {"password": "hunter2", "status": 400}
    line = formatter.format(record)
    assert "71.43" not in line
    assert "hunter2" not in line
    assert "Ada" in line
    assert "400" in line


# 4. 500s from admin filters -------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/admin/sync/timeentry/?status__regex=(",
        "/admin/pipeline/inboxitem/?status__regex=(",
        "/admin/pipeline/exceptionitem/?status__regex=(",
        "/admin/pipeline/syncrun/?status__regex=(",
        "/admin/mappings/mappingversion/?status__regex=(",
        "/admin/sync/worker/?name__regex=(",
        "/admin/sync/worker/?cost_rate__isnull=False",
        "/admin/sync/timeentry/?work_date__year=9999",
    ],
)
def test_a_malformed_or_unlisted_admin_filter_answers_400_not_500(url, django_user_model):
    from django.test import Client

    client = Client(raise_request_exception=False)
    client.force_login(django_user_model.objects.create_superuser("root", "r@x.invalid", "pw"))
    assert client.get(url).status_code == 400


@pytest.mark.django_db
def test_the_list_filters_links_still_work(client, django_user_model):
    entity = f.LegalEntityFactory()
    client.force_login(django_user_model.objects.create_superuser("root", "r@x.invalid", "pw"))
    for url in (
        f"/admin/sync/worker/?legal_entity__id__exact={entity.pk}",
        "/admin/sync/worker/?employment_status__exact=active",
        "/admin/sync/timeentry/?work_date__year=2026&work_date__month=10",
        "/admin/sync/timeentry/?billable__exact=1",
        "/admin/mappings/mappingversion/?mapping_set__kind__exact=legal_entity",
        "/admin/pipeline/delivery/?connection__id__exact=1&state__exact=failed",
    ):
        assert client.get(url).status_code == 200, url


# 5. the read-only auditor could trigger work --------------------------------------------------
@pytest.mark.django_db
def test_the_auditor_cannot_send_a_heartbeat_and_sees_no_button(client, role_user):
    client.force_login(role_user("auditor"))
    assert b"Send a heartbeat now" not in client.get("/runs/").content
    assert client.post("/runs/ping/").status_code == 403
    assert not WorkerHeartbeat.objects.exists()


# 6. hygiene ------------------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/runs/", "/admin/", "/accounts/login/"])
def test_every_page_carries_a_content_security_policy_and_no_store(client, role_user, path):
    user = role_user("integration_ops", is_staff=True)
    client.force_login(user)
    response = client.get(path)
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-eval" not in policy
    assert "no-store" in response.headers["Cache-Control"]


@pytest.mark.django_db
def test_a_worker_page_shows_the_cost_rate_to_finance_staff_only(client, staff):
    worker = f.WorkerFactory(cost_rate=Decimal("123.45"))
    finance = staff("finance")
    client.force_login(finance)
    assert b"123.45" in client.get(f"/admin/sync/worker/{worker.pk}/change/").content
    client.force_login(staff("auditor"))
    page = client.get(f"/admin/sync/worker/{worker.pk}/change/").content
    assert b"123.45" not in page
    assert MASK.encode() in page


def test_redaction_leaves_non_json_values_alone():
    assert value_redact("costRate 5", cost_rates_visible=False) == "costRate 5"
    assert json.loads(json.dumps(value_redact([1, {"a": None}], cost_rates_visible=False))) == [
        1,
        {"a": None},
    ]
