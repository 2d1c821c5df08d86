"""A person signs in through the real login form in Chromium and finds their areas."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def sign_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/runs/")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_integration_ops_signs_in_lands_on_the_page_asked_for_and_signs_out(
    live_server, page, role_user
):
    role_user("integration_ops", username="ops", is_staff=True)
    user = role_user("integration_ops", username="ops2")
    user.set_password("a-long-demo-password")
    user.save()

    sign_in(page, live_server.url, "ops2", "a-long-demo-password")

    page.wait_for_url(f"{live_server.url}/runs/")
    assert page.locator("h1").inner_text() == "Runs"
    nav = page.locator("nav.areas a").all_inner_texts()
    assert nav == ["Exceptions", "Runs", "Dashboards"]

    page.click("text=Sign out")
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url


def test_a_wrong_password_shows_an_error_and_no_portal(live_server, page, role_user):
    user = role_user("finance", username="fin")
    user.set_password("a-long-demo-password")
    user.save()

    sign_in(page, live_server.url, "fin", "not-the-password")

    assert page.locator("[role=alert]").is_visible()
    assert "/accounts/login/" in page.url
    assert page.locator("nav.areas").count() == 0
