"""Roles in Chromium: a PMO user cannot open finance queues or see cost rates; the auditor reads
every area, finds no action button, and every action URL answers 403."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from tests.portal.test_exceptions_pages import raise_items

pytestmark = pytest.mark.browser
PASSWORD = "a-long-demo-password"
COST_RATE = "8642.19"


def signed_in(browser, base_url: str, role_user, role: str):
    user = role_user(role, username=f"{role}-roles")
    user.set_password(PASSWORD)
    user.save()
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def test_pmo_cannot_open_finance_queues_or_see_cost_rates(live_server, browser, role_user):
    url = live_server.url
    # A time item (a finance queue) and a project set-up item (PMO's) whose payload names a
    # worker's cost rate: the rate must not reach a PMO user.
    (time_item,) = raise_items(1, cause="W-9")
    (setup_item,) = raise_items(
        1,
        queue="project_setup",
        code="PROJECT_UNKNOWN",
        cause="P-9",
        payload={"worker": {"name": "Ada", "cost_rate": COST_RATE}},
        money_at_risk=Decimal("50.00"),
    )
    page = signed_in(browser, url, role_user, "pmo")

    page.goto(f"{url}/exceptions/")
    queues = page.locator("#queue-cards [data-queue]").evaluate_all(
        "cards => cards.map(c => c.dataset.queue)"
    )
    assert queues == ["project_setup"]
    assert page.goto(f"{url}/exceptions/{time_item.pk}/").status == 404
    assert page.goto(f"{url}/exceptions/?queue=time_and_expense").status == 200
    assert f"/exceptions/{time_item.pk}/" not in page.content()

    assert page.goto(f"{url}/exceptions/{setup_item.pk}/").status == 200
    assert COST_RATE not in page.content()
    assert page.goto(f"{url}/reconciliation/").status == 403


def test_the_auditor_reads_everything_acts_nowhere(live_server, browser, role_user):
    url = live_server.url
    (item,) = raise_items(1, cause="W-10")
    page = signed_in(browser, url, role_user, "auditor")

    areas = ("exceptions", "exceptions/groups", "mappings", "ownership", "runs", "reconciliation")
    for area in (*areas, "dashboards", f"exceptions/{item.pk}"):
        assert page.goto(f"{url}/{area}/").status == 200, area
        assert page.locator("main form[method=post] button").count() == 0, area

    token = page.context.cookies()
    csrf = next(c["value"] for c in token if c["name"] == "csrftoken")
    for action_url in (
        reverse("exceptions-item-act", args=[item.pk]),
        reverse("exceptions-group-act", args=[item.root_cause]),
        reverse("runs-act"),
        reverse("worker-ping"),
        reverse("reconciliation-act"),
        reverse("ownership-change-propose"),
    ):
        answer = page.request.post(
            f"{url}{action_url}",
            form={"action": "resolve", "reason": "auditor tries"},
            headers={"X-CSRFToken": csrf, "Referer": url},
        )
        assert answer.status == 403, action_url
    item.refresh_from_db()
    assert item.status == "open"
