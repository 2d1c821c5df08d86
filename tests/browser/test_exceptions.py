"""Finance works the exception queues in Chromium: cards, groups, one item, a resolve; the
auditor reads the same pages with no action on them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sync.pipeline.models import ExceptionItem
from tests.portal.test_exceptions_pages import raise_items

pytestmark = pytest.mark.browser


def sign_in_as(page, base_url: str, role_user, role: str) -> None:
    user = role_user(role, username=f"{role}-browser")
    user.set_password("a-long-demo-password")
    user.save()
    page.goto(f"{base_url}/exceptions/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "a-long-demo-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/exceptions/")


def test_finance_finds_a_group_opens_an_item_and_resolves_it_with_a_reason(
    live_server, page, role_user
):
    raise_items(3, cause="W-7", money_at_risk=Decimal("120.00"))
    lone = raise_items(1, cause="W-8", money_at_risk=Decimal("45.50"), currency="EUR")[0]
    sign_in_as(page, live_server.url, role_user, "finance")

    card = page.locator("[data-queue=time_and_expense]")
    assert "4 open" in " ".join(card.inner_text().split())
    assert "360.00 GBP at risk" in card.inner_text()

    page.click("text=Root-cause groups")
    rows = page.locator("#groups tbody tr")
    assert rows.count() == 2
    assert "3 time entries" in rows.first.inner_text()
    assert "W-7" in rows.first.inner_text()

    page.goto(f"{live_server.url}/exceptions/{lone.pk}/")
    assert "45.50 EUR" in page.locator("dl.facts").inner_text()
    page.fill("form:has(button[value=resolve]) input[name=reason]", "Cost centre set in HR.")
    page.click("button[value=resolve]")
    page.wait_for_url(f"{live_server.url}/exceptions/{lone.pk}/")
    assert "Resolved" in page.locator("#item-status").inner_text()
    lone.refresh_from_db()
    assert lone.status == ExceptionItem.Status.RESOLVED


def test_the_auditor_reads_the_queues_and_finds_no_button_to_act(live_server, page, role_user):
    item = raise_items(2, cause="W-3")[0]
    sign_in_as(page, live_server.url, role_user, "auditor")
    assert page.locator("#items tbody tr").count() == 2
    page.goto(f"{live_server.url}/exceptions/groups/")
    assert page.locator("button[name=action]").count() == 0
    page.goto(f"{live_server.url}/exceptions/{item.pk}/")
    assert page.locator("button[name=action]").count() == 0
    assert "does not act" in page.content()
