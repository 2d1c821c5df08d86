"""The LB-NL journey in Chromium (issue #15, Done when 1, first bullet).

Legal entity LB-NL has no ERP subsidiary in the published legal-entity mapping, so its
approved time is parked LEGAL_ENTITY_UNMAPPED. Finance finds the group and reads its fix; a
mapping admin adds LB-NL to a draft, dry-runs it and sees the group's entries among those it
would clear, and submits; a second mapping admin publishes it and the version page offers the
group for replay; finance replays the group; the items resolve and the deliveries reach the
ERP sandbox — served on a real socket — which holds each posting exactly once, read back
through its own SuiteQL API. A second replay of the same group posts nothing more.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from portal.exceptions import group_fixes
from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.core.server import sandbox_server_start
from sync.integrations.netsuite.time_bills import time_bill_key
from sync.integrations.registry import target_connector_for
from sync.mappings import services
from sync.models import AccountingPeriod, ExternalRef
from sync.pipeline.delivery import deliveries_send_due
from sync.pipeline.exception_queries import exception_groups
from sync.pipeline.inbox import inbox_store
from sync.pipeline.models import Connection, Delivery, ExceptionItem, SyncRun
from sync.pipeline.time_posting.flow import time_entries_process
from tests import factories as f

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]
PASSWORD = "a-long-demo-password"
PSA_IDS = ("9101", "9102", "9103")
OCT = dt.date(2026, 10, 1)


@pytest.fixture
def erp():
    """The ERP sandbox on a free loopback port (its records in the `sandbox` test database)
    and Ledgerbridge's connection to it."""
    running = sandbox_server_start(app=SandboxApp(faults=FaultBook(seed=15)))
    credentials = dict(running.app.dialect("netsuite").credentials(running.url("netsuite")))
    connection = Connection(
        name="netsuite", system="erp", dialect="netsuite", base_url=credentials.pop("base_url")
    )
    connection.credentials_set({key: str(value) for key, value in credentials.items()})
    connection.save()
    yield connection
    running.stop()


def erp_books(erp: Connection) -> dict[str, str]:
    """The ERP's side, created through its REST API: LB UK and LB NL subsidiaries, and in NL a
    department, customer, employee, project (job) with a task, and October 2026 open."""
    netsuite = target_connector_for(erp)
    try:
        ids = {
            "gbp": netsuite.create(record_type="currency", body={"name": "Pound", "symbol": "GBP"})
        }
        ids["eur"] = netsuite.create(record_type="currency", body={"name": "Euro", "symbol": "EUR"})
        ids["gb"] = netsuite.create(
            record_type="subsidiary", body={"name": "LB UK", "currency": {"id": ids["gbp"]}}
        )
        ids["nl"] = netsuite.create(
            record_type="subsidiary", body={"name": "LB NL", "currency": {"id": ids["eur"]}}
        )
        ids["dept"] = netsuite.create(record_type="department", body={"name": "Consulting NL"})
        ids["customer"] = netsuite.create(
            record_type="customer", body={"companyName": "Omroep", "subsidiary": {"id": ids["nl"]}}
        )
        ids["employee"] = netsuite.create(
            record_type="employee",
            body={
                "firstName": "Anouk",
                "lastName": "V",
                "subsidiary": {"id": ids["nl"]},
                "department": {"id": ids["dept"]},
            },
        )
        ids["job"] = netsuite.create(
            record_type="job", body={"companyName": "Replatform", "parent": {"id": ids["customer"]}}
        )
        ids["task"] = netsuite.create(
            record_type="projectTask", body={"title": "Build", "company": {"id": ids["job"]}}
        )
        netsuite.create(
            record_type="accountingPeriod",
            body={
                "periodName": "Oct 2026",
                "startDate": "2026-10-01",
                "endDate": "2026-10-31",
                "subsidiary": {"id": ids["nl"]},
            },
        )
    finally:
        netsuite.close()
    return ids


def link(system: str, record, external_id: str) -> None:
    ExternalRef.objects.create(
        system=system,
        content_type=ContentType.objects.get_for_model(record),
        object_id=str(record.pk),
        external_id=external_id,
    )


def firm_with_lb_nl_parked(erp: Connection, books: dict[str, str]) -> None:
    """Ledgerbridge's side: LB-GB and LB-NL (each linked to its ERP subsidiary), an LB-NL
    project, task and worker known in the PSA and the ERP, the legal-entity mapping v1 that maps
    LB-GB only, and three approved LB-NL time entries processed: parked LEGAL_ENTITY_UNMAPPED."""
    eur = f.currency("EUR")
    gb = f.LegalEntityFactory(code="LB-GB")
    nl = f.LegalEntityFactory(code="LB-NL", country="NL", functional_currency=eur)
    link("erp", gb, books["gb"])
    link("erp", nl, books["nl"])
    customer = f.CustomerFactory(legal_entity=nl, status="approved", name="Omroep")
    project = f.ProjectFactory(customer=customer, legal_entity=nl, currency=eur, code="P-NL-1")
    task = f.TaskFactory(project=project, code="T-1")
    centre = f.CostCentreFactory(legal_entity=nl)
    worker = f.WorkerFactory(legal_entity=nl, cost_centre=centre)
    for system, record, external_id in (
        ("psa", project, "ws-nl"),
        ("psa", task, "st-nl"),
        ("psa", worker, "u-nl"),
        ("erp", project, books["job"]),
        ("erp", task, books["task"]),
        ("erp", worker, books["employee"]),
        ("erp", centre, books["dept"]),
    ):
        link(system, record, external_id)
    AccountingPeriod.objects.create(
        legal_entity=nl, start_date=OCT, end_date=dt.date(2026, 10, 31), status="open"
    )
    legal_entities = services.mapping_set_create(
        slug="legal-entity", name="Legal entity → ERP subsidiary", kind="legal_entity", user=None
    )
    v1 = services.mapping_version_create_draft(mapping_set=legal_entities, user=None)
    services.mapping_entry_set(
        version=v1, source_value="LB-GB", target_value=books["gb"], user=None
    )
    services.mapping_version_submit(version=v1, user=None)
    services.mapping_version_publish(version=v1, effective_from=dt.date(2026, 1, 1), user=None)

    records = [
        (
            psa_id,
            {
                "id": psa_id,
                "workspace_id": "ws-nl",
                "story_id": "st-nl",
                "user_id": "u-nl",
                "date_performed": f"2026-10-{12 + n:02d}",
                "time_in_minutes": 450,
                "billable": True,
                "approved": True,
                "rate_in_cents": 12000,
                "currency": "EUR",
            },
        )
        for n, psa_id in enumerate(PSA_IDS)
    ]
    stored = inbox_store(system="psa", entity="time_entries", records=records)
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    time_entries_process(inbox_ids=[i.id for i in stored.new], run=run, erp=erp)


def person(role_user, role: str, username: str):
    user = role_user(role, username=username)
    user.set_password(PASSWORD)
    user.save()
    return user


def signed_in(browser, base_url: str, user, start: str):
    """A page of a fresh browser context, signed in as `user`, at `start`."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base_url}{start}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{start}")
    return page


def lb_nl_items() -> list[ExceptionItem]:
    return list(ExceptionItem.objects.filter(code="LEGAL_ENTITY_UNMAPPED", cause="LB-NL"))


def time_bills_in_the_erp(erp: Connection) -> Counter[str]:
    """How many timeBill records the ERP holds per externalId, asked through SuiteQL."""
    netsuite = target_connector_for(erp)
    try:
        rows = [
            row
            for page in netsuite.suiteql("SELECT id, externalid FROM timebill")
            for row in page.records
        ]
    finally:
        netsuite.close()
    return Counter(row["externalid"] for row in rows)


def deliver() -> None:
    """What the beat's delivery sweep has a worker do: send every due delivery."""
    deliveries_send_due(limit=100)


def test_lb_nl_time_parked_for_a_missing_mapping_is_fixed_replayed_and_posted_once(
    live_server, browser, role_user, erp
):
    books = erp_books(erp)
    firm_with_lb_nl_parked(erp, books)
    parked = lb_nl_items()
    assert len(parked) == 3
    assert {i.status for i in parked} == {ExceptionItem.Status.OPEN}
    url = live_server.url
    fiona = person(role_user, "finance", "fiona")
    ivan = person(role_user, "integration_ops", "ivan")
    maria = person(role_user, "mapping_admin", "maria")
    omar = person(role_user, "mapping_admin", "omar")

    # Finance finds the LB-NL group, with its money at risk and the fix.
    finance = signed_in(browser, url, fiona, "/exceptions/groups/")
    group = finance.locator("#groups tr[data-code=LEGAL_ENTITY_UNMAPPED]", has_text="LB-NL")
    text = " ".join(group.inner_text().split())
    assert "3 time entries" in text
    assert "2,700.00 EUR" in text
    assert "map LB-NL in the legal-entity mapping" in text
    # Finance follows the fix link to the set's newest version: readable, not editable; a
    # mapping admin opens the same page to change it.
    (fix,) = group_fixes(exception_groups(queues=("mapping",)), user=maria).values()
    group.locator("a.fix-link").click()
    finance.wait_for_url(f"{url}{fix['url']}")
    assert finance.locator("button[value=new_draft]").count() == 0
    finance.goto(f"{url}/exceptions/groups/")
    # Integration ops has the same page open (to replay later from a stale tab).
    ops = signed_in(browser, url, ivan, "/exceptions/groups/")

    # Mapping admin 1 follows the fix link, drafts LB-NL → NL's subsidiary, dry-runs, submits.
    drafting = signed_in(browser, url, maria, fix["url"])
    drafting.click("button[value=new_draft]")
    assert "Draft v2" in drafting.locator(".messages").inner_text()
    drafting.fill("#add-row input[name=source_value]", "LB-NL")
    drafting.fill("#add-row input[name=target_value]", books["nl"])
    drafting.click("#add-row button[value=entry_set]")
    assert drafting.locator("#entries tr[data-source='LB-NL']").count() == 1
    drafting.fill("input[name=effective_from]", "2026-10-01")  # the time was worked in October
    drafting.click("button[value=update]")
    drafting.click("#dry-run button[type=submit]")
    assert drafting.locator("#dry-run-clears").inner_text() == "3"
    cleared = drafting.locator("#dry-run-exceptions").inner_text()
    assert "LEGAL_ENTITY_UNMAPPED" in cleared
    assert "2,700.00 EUR" in cleared
    for psa_id in PSA_IDS:
        row = drafting.locator("#dry-run-changes tbody tr", has_text=psa_id)
        assert "parked LEGAL_ENTITY_UNMAPPED" in row.inner_text()
        assert "would post" in row.inner_text()
    drafting.click("button[value=submit]")
    assert drafting.locator("#version-status").get_attribute("data-status") == "in_review"
    drafting.context.close()

    # Mapping admin 2 publishes; the page offers the group, and says who replays it.
    publishing = signed_in(browser, url, omar, "/mappings/")
    publishing.click("[data-set=legal-entity] tr[data-version='2'] a")
    publishing.fill("#publish-form input[name=effective_from]", "2026-10-01")
    publishing.click("button[value=publish]")
    assert publishing.locator("#version-status").get_attribute("data-status") == "published"
    assert "It clears 3 open exception items in 1 group" in publishing.content()
    offered = publishing.locator("#replay-groups tbody tr", has_text="LB-NL")
    offer_text = " ".join(offered.inner_text().split())
    assert offer_text.startswith("3 ")
    assert "2,700.00 EUR" in offer_text
    assert "Ask finance or integration ops to replay it." in offer_text
    assert offered.locator("button").count() == 0
    publishing.context.close()

    # Finance replays the group (3 items: acted on in the request); the items resolve.
    finance.goto(f"{url}/exceptions/groups/")
    finance.locator("#groups tr[data-code=LEGAL_ENTITY_UNMAPPED]", has_text="LB-NL").locator(
        "button[value=replay]"
    ).click()
    finance.wait_for_url(f"{url}/exceptions/groups/")
    assert "Replayed 3: 3 resolved, 0 still open." in finance.locator(".messages").inner_text()
    assert {i.status for i in lb_nl_items()} == {ExceptionItem.Status.RESOLVED}

    # The worker's sweep sends the postings: the ERP holds each exactly once.
    deliver()
    keys = {time_bill_key(psa_id) for psa_id in PSA_IDS}
    assert time_bills_in_the_erp(erp) == Counter(dict.fromkeys(keys, 1))
    deliveries = Delivery.objects.filter(external_id__in=keys)
    assert sorted(deliveries.values_list("state", flat=True)) == [Delivery.State.DELIVERED] * 3

    # Replay again, from the tab integration ops left open before the fix: nothing to replay,
    # nothing posted twice.
    ops.locator("#groups tr[data-code=LEGAL_ENTITY_UNMAPPED]", has_text="LB-NL").locator(
        "button[value=replay]"
    ).click()
    ops.wait_for_url(f"{url}/exceptions/groups/")
    assert "no open items" in ops.locator(".messages").inner_text()
    deliver()
    assert time_bills_in_the_erp(erp) == Counter(dict.fromkeys(keys, 1))
    assert Delivery.objects.filter(external_id__in=keys).count() == 3
    assert sum((Decimal(d.payload["amount"]) for d in deliveries), Decimal(0)) == Decimal("2700.00")
    finance.context.close()
    ops.context.close()
