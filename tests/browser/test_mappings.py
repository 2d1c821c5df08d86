"""A mapping change in Chromium: one mapping admin adds a row to a draft and submits it, a
second publishes it; a CSV with a bad row shows the row's error and changes nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from sync.mappings import services
from sync.mappings.models import MappingVersion
from tests import factories as f

pytestmark = pytest.mark.browser
PASSWORD = "a-long-demo-password"


def sign_in(browser, base_url: str, role_user, username: str):
    """A page of a fresh browser context, signed in as a new mapping admin `username`."""
    user = role_user("mapping_admin", username=username)
    user.set_password(PASSWORD)
    user.save()
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base_url}/mappings/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/mappings/")
    return page


@pytest.fixture
def legal_entity_set(db):
    """v1 published by the system (LB-GB → 3); the ERP has subsidiaries 3 and 7."""
    for subsidiary in ("3", "7"):
        f.ExternalRefFactory(record=f.LegalEntityFactory(), system="erp", external_id=subsidiary)
    mapping_set = services.mapping_set_create(
        slug="legal-entity", name="Legal entity → ERP subsidiary", kind="legal_entity", user=None
    )
    v1 = services.mapping_version_create_draft(mapping_set=mapping_set, user=None)
    services.mapping_entry_set(version=v1, source_value="LB-GB", target_value="3", user=None)
    services.mapping_version_submit(version=v1, user=None)
    services.mapping_version_publish(version=v1, effective_from=dt.date(2026, 1, 1), user=None)
    return mapping_set


def test_one_admin_drafts_and_submits_a_row_a_second_publishes_it(
    live_server, browser, role_user, legal_entity_set
):
    maria = sign_in(browser, live_server.url, role_user, "maria")
    maria.click("[data-set=legal-entity] tr[data-version='1'] a")
    maria.click("button[value=new_draft]")
    assert "Draft v2" in maria.locator(".messages").inner_text()

    maria.fill("#add-row input[name=source_value]", "LB-NL")
    maria.fill("#add-row input[name=target_value]", "7")
    maria.click("#add-row button[value=entry_set]")
    assert maria.locator("#entries tr[data-source='LB-NL']").count() == 1
    maria.click("button[value=submit]")
    assert maria.locator("#version-status").get_attribute("data-status") == "in_review"
    maria.context.close()

    omar = sign_in(browser, live_server.url, role_user, "omar")
    omar.click("[data-set=legal-entity] tr[data-version='2'] a")
    omar.fill("#publish-form input[name=effective_from]", "2026-07-01")
    omar.click("button[value=publish]")
    assert omar.locator("#version-status").get_attribute("data-status") == "published"
    assert "omar published it" in omar.locator("#reviewer").inner_text()
    assert omar.locator("#entries input").count() == 0  # published: read-only
    omar.context.close()

    v2 = legal_entity_set.versions.get(number=2)
    assert (v2.status, v2.effective_from) == (MappingVersion.Status.PUBLISHED, dt.date(2026, 7, 1))
    assert dict(v2.entries.values_list("source_value", "target_value")) == {
        "LB-GB": "3",
        "LB-NL": "7",
    }


def test_a_csv_with_a_bad_row_shows_the_rows_error_and_changes_nothing(
    live_server, browser, role_user, legal_entity_set
):
    draft = services.mapping_version_create_draft(
        mapping_set=legal_entity_set,
        based_on=legal_entity_set.versions.get(number=1),
        user=None,
    )
    maria = sign_in(browser, live_server.url, role_user, "maria")
    maria.goto(f"{live_server.url}/mappings/versions/{draft.pk}/")

    bad = b"source_value,target_value,attributes\nLB-NL,7,\nLB-FR,99,\n"
    maria.set_input_files(
        "input[name=file]", files=[{"name": "e.csv", "mimeType": "text/csv", "buffer": bad}]
    )
    maria.click("button[value=import]")

    errors = maria.locator("#import-errors").inner_text()
    assert "Nothing was imported" in errors
    assert "Row 3: Target '99' is not an ERP subsidiary id Ledgerbridge knows." in errors
    assert maria.locator("#entries tbody tr").count() == 1
    assert dict(draft.entries.values_list("source_value", "target_value")) == {"LB-GB": "3"}
    maria.context.close()
