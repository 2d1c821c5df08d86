"""An executive reads the dashboards in Chromium: filter to one legal entity, click a bar of the
leakage chart, land on the records behind it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from reconciliation.rollup import time_rollup_refresh
from sync.models.transactions import ApprovalStatus
from tests import factories as f

pytestmark = pytest.mark.browser


def test_an_executive_filters_to_one_entity_and_clicks_a_leakage_bar_to_its_records(
    live_server, page, role_user
):
    old = timezone.localdate() - dt.timedelta(days=60)
    worker = f.WorkerFactory()
    for code, entity, entries in (("UK-1", "LB-UK", 3), ("NL-1", "LB-NL", 2)):
        legal_entity = f.LegalEntityFactory(code=entity, name=f"Ledgerbridge {entity}")
        project = f.ProjectFactory(
            code=code, legal_entity=legal_entity, customer__legal_entity=legal_entity
        )
        for n in range(entries):
            f.TimeEntryFactory(
                project=project,
                worker=worker,
                hours=Decimal("8"),
                bill_rate=Decimal("125.00"),
                work_date=old,
                status=ApprovalStatus.POSTED,
                psa_id=f"te-{code}-{n}",
            )
    time_rollup_refresh()
    user = role_user("executive", username="exec-browser")
    user.set_password("a-long-demo-password")
    user.save()

    page.goto(f"{live_server.url}/dashboards/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "a-long-demo-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/dashboards/")
    page.select_option("#id_legal_entity", "LB-NL")
    page.click("#scope button[type=submit]")
    page.wait_for_selector("#chart-leakage[data-ready=yes] .bars path")
    assert "2,000.00" in page.locator("#table-leakage").inner_text()  # 2 x 8 h x 125.00
    assert "3,000.00" not in page.locator("#table-leakage").inner_text()

    bar = page.locator("#chart-leakage .bars path").first.bounding_box()
    page.mouse.click(bar["x"] + bar["width"] / 2, bar["y"] + bar["height"] / 2)
    page.wait_for_url("**/dashboards/records/**")

    shown = page.locator("#records tbody").inner_text()
    assert "te-NL-1-0" in shown
    assert "te-NL-1-1" in shown
    assert "te-UK-1" not in shown
    assert "legal_entity=LB-NL" in page.url
