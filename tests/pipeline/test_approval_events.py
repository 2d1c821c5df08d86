"""An approval in the PSA reaches the ERP through its webhook at once, exactly once, or waits
visibly: malformed events are parked, and events the task could not process go with the cycle.

The sandbox runs in-process (the connectors' transport is the WSGI app) and Celery runs tasks
eagerly, so the webhook view → on-commit enqueue → task → PSA read → time posting → ERP write
path is the one production takes, minus the broker; the last test takes the real broker and a
real worker process (`make test`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

import httpx
import orjson
import pytest
from django.contrib.contenttypes.models import ContentType

from sandbox import storage
from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.kantata import views as kantata_views
from sandbox.kantata.webhooks import (
    expenses_approve,
    time_entries_approve,
    webhook_event_body,
    webhook_signature,
)
from sandbox.models import SandboxEvent, SandboxRecord
from sandbox.netsuite import views as netsuite_views
from sandbox.router import SANDBOX_DB
from sync.integrations import registry
from sync.integrations.kantata.client import KantataConnector
from sync.integrations.netsuite.client import NetSuiteConnector
from sync.models import AccountingPeriod, ExternalRef
from sync.pipeline.cycle import processing_registry, sync_cycle_run
from sync.pipeline.models import Connection, Delivery, ExceptionItem, InboxItem, SyncRun
from sync.tasks_events import approval_event_process
from tests import factories as f
from tests.pipeline.test_cycle import ledger_build

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

SECRET = "whsec_kantata_test"
NS_REST = "/netsuite/services/rest"


# -- the two systems, in-process ----------------------------------------------------------------
@pytest.fixture
def sandbox() -> SandboxApp:
    return SandboxApp(faults=FaultBook(seed=3), manage_connections=False, sleep=lambda s: None)


@pytest.fixture
def transport_for(sandbox):
    return lambda connection: httpx.WSGITransport(app=sandbox)


@pytest.fixture
def network(sandbox, monkeypatch, settings):
    """Every connector Ledgerbridge opens reaches the in-process sandbox; tasks run eagerly."""
    in_process = httpx.WSGITransport(app=sandbox)

    def through_sandbox(connector_class):
        def connect(config, *, transport=None, **options):
            return connector_class(config, transport=transport or in_process, **options)

        return connect

    kantata, netsuite = registry.INTEGRATIONS["kantata"], registry.INTEGRATIONS["netsuite"]
    kantata = dataclasses.replace(kantata, source=through_sandbox(KantataConnector))
    netsuite = dataclasses.replace(netsuite, target=through_sandbox(NetSuiteConnector))
    monkeypatch.setitem(registry.INTEGRATIONS, "kantata", kantata)
    monkeypatch.setitem(registry.INTEGRATIONS, "netsuite", netsuite)
    # Celery reads its Django settings live (portal/celery.py, namespace CELERY).
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


@pytest.fixture
def psa() -> Connection:
    conn = Connection(
        name="kantata",
        system="psa",
        dialect="kantata",
        base_url="http://sandbox.test/kantata/api/v1",
        max_concurrency=1,
    )
    conn.credentials_set({"access_token": kantata_views.ACCESS_TOKEN, "webhook_secret": SECRET})
    conn.save()
    return conn


@pytest.fixture
def erp() -> Connection:
    conn = Connection(
        name="netsuite",
        system="erp",
        dialect="netsuite",
        base_url="http://sandbox.test/netsuite",
        max_concurrency=1,
    )
    conn.credentials_set(
        {"client_id": netsuite_views.CLIENT_ID, "client_secret": netsuite_views.CLIENT_SECRET}
    )
    conn.save()
    return conn


@pytest.fixture
def ledger(sandbox) -> dict[str, str]:
    return ledger_build(sandbox)


@pytest.fixture
def firm(ledger) -> dict:
    return firm_build(ledger)


def firm_build(ledger: dict[str, str]) -> dict:
    """The PSA's workspace, story and consultant, known to Ledgerbridge as a project, task and
    worker with their ERP ids, an open October and a published legal-entity mapping."""
    from django.contrib.auth import get_user_model

    from sync.mappings.services import (
        mapping_entry_set,
        mapping_set_create,
        mapping_version_create_draft,
        mapping_version_publish,
        mapping_version_submit,
    )

    workspace = storage.record_create(
        system="kantata", object_type="workspaces", data={"title": "Rollout"}
    )
    story = storage.record_create(
        system="kantata", object_type="stories", data={"title": "Design"}, parent_id=workspace.pk
    )
    user = storage.record_create(system="kantata", object_type="users", data={"full_name": "Ada L"})
    gbp = f.currency("GBP")
    uk = f.LegalEntityFactory(code="UK01", functional_currency=gbp)
    customer = f.CustomerFactory(legal_entity=uk, status="approved", name="Acme Ltd")
    project = f.ProjectFactory(customer=customer, legal_entity=uk, currency=gbp, code="P-100")
    task = f.TaskFactory(project=project, code="T-1")
    cost_centre = f.CostCentreFactory(legal_entity=uk)
    worker = f.WorkerFactory(legal_entity=uk, cost_centre=cost_centre)
    for system, record, external_id in [
        ("psa", project, workspace.pk),
        ("psa", task, story.pk),
        ("psa", worker, user.pk),
        ("erp", worker, ledger["employee"]),
        ("erp", cost_centre, ledger["dept"]),
    ]:
        ExternalRef.objects.create(
            system=system,
            content_type=ContentType.objects.get_for_model(record),
            object_id=str(record.pk),
            external_id=str(external_id),
        )
    AccountingPeriod.objects.create(
        legal_entity=uk,
        start_date=dt.date(2026, 10, 1),
        end_date=dt.date(2026, 10, 31),
        status="open",
    )
    admin = get_user_model().objects.create_user("mapper")
    mapping_set = mapping_set_create(
        slug="legal-entity", name="Legal entity → subsidiary", kind="legal_entity", user=admin
    )
    draft = mapping_version_create_draft(mapping_set=mapping_set, user=admin)
    mapping_entry_set(version=draft, source_value="UK01", target_value=ledger["uk"], user=admin)
    mapping_version_submit(version=draft, user=admin)
    mapping_version_publish(version=draft, effective_from=dt.date(2026, 1, 1), user=None)
    return {"workspace": workspace, "story": story, "user": user}


def submitted_time(firm, minutes: int = 450) -> SandboxRecord:
    """A consultant's time entry waiting for approval in the PSA."""
    return storage.record_create(
        system="kantata",
        object_type="time_entries",
        parent_id=firm["workspace"].pk,
        status="unapproved",
        data={
            "workspace_id": str(firm["workspace"].pk),
            "story_id": str(firm["story"].pk),
            "user_id": str(firm["user"].pk),
            "date_performed": "2026-10-14",
            "time_in_minutes": minutes,
            "billable": True,
            "rate_in_cents": 12000,
            "currency": "GBP",
            "approval_status": "submitted",
        },
    )


def approval_body(record: SandboxRecord) -> bytes:
    """The webhook body the PSA sends for the approval it has just recorded."""
    event = (
        SandboxEvent.objects.using(SANDBOX_DB)
        .filter(system="kantata", record_id=record.pk, action="approved")
        .latest("pk")
    )
    return webhook_event_body(event)


def post_event(client, body: bytes):
    stamp = str(int(time.time()))
    return client.post(
        "/hooks/psa/kantata",
        data=body,
        content_type="application/json",
        headers={
            "X-Kantata-Timestamp": stamp,
            "X-Kantata-Signature": webhook_signature(secret=SECRET, timestamp=stamp, body=body),
        },
    )


def time_bills() -> list[SandboxRecord]:
    return list(storage.record_queryset(system="netsuite", object_type="timeBill"))


def event_items():
    return InboxItem.objects.filter(system="psa", entity="approval_events")


# -- the event path -------------------------------------------------------------------------------
def test_an_approval_posted_to_the_webhook_ends_as_exactly_one_time_bill_in_the_erp(
    client, psa, erp, firm, network, django_capture_on_commit_callbacks
):
    entry = submitted_time(firm)
    time_entries_approve(ids=[entry.pk])

    with django_capture_on_commit_callbacks(execute=True):
        answer = post_event(client, approval_body(entry))

    assert answer.status_code == 200, answer.content
    (bill,) = time_bills()
    assert bill.external_id == f"KT-TE-{entry.pk}"
    assert str(bill.data["hours"]) in {"7.5", "7.50"}
    event = event_items().get()
    stored = InboxItem.objects.get(system="psa", entity="time_entries")
    assert (event.status, stored.status) == ("processed", "processed")
    assert stored.external_id == str(entry.pk)
    posting = Delivery.objects.get()
    assert (posting.state, posting.target_id) == ("delivered", str(bill.pk))
    # The event's correlation id follows the record into the inbox.
    assert stored.correlation_id == event.correlation_id
    run = SyncRun.objects.get(entity="approval_events")
    assert (run.kind, run.status, run.created, run.delivered) == ("process", "succeeded", 1, 1)


def test_the_same_approval_delivered_twice_is_posted_once(
    client, psa, erp, firm, network, django_capture_on_commit_callbacks
):
    entry = submitted_time(firm)
    time_entries_approve(ids=[entry.pk])
    body = approval_body(entry)

    with django_capture_on_commit_callbacks(execute=True):
        first = post_event(client, body)
        again = post_event(client, body)
    # A broker may hand the task over twice too (acks_late): the second run finds it done.
    assert approval_event_process(inbox_item_id=event_items().get().pk) is None

    assert (first.json()["stored"], again.json()["stored"]) == (True, False)
    assert len(time_bills()) == 1
    assert Delivery.objects.count() == 1
    assert InboxItem.objects.filter(entity="time_entries").count() == 1


def test_a_malformed_approval_event_is_parked_with_a_clear_reason_and_posts_nothing(
    client, psa, erp, firm, network, django_capture_on_commit_callbacks
):
    body = orjson.dumps(
        {
            "event_id": "77",
            "event_type": "time_entry.approved",
            "subject_type": "expenses",
            "occurred_at": "yesterday",
        }
    )

    with django_capture_on_commit_callbacks(execute=True):
        answer = post_event(client, body)

    assert answer.status_code == 200  # stored: nothing the sender sent is lost
    assert event_items().get().status == "parked"
    item = ExceptionItem.objects.get()
    assert (item.code, item.stage, item.queue) == ("MALFORMED_PAYLOAD", "parse", "integration_ops")
    assert "`subject_type` must be 'time_entries'" in item.message
    assert "`subject_id` is missing" in item.message
    assert "`occurred_at` must be an ISO 8601 time" in item.message
    assert item.payload["event_id"] == "77"
    assert time_bills() == []


def test_an_approved_expense_is_stored_for_the_expense_flow_and_posts_nothing(
    client, psa, erp, firm, network, django_capture_on_commit_callbacks
):
    expense = storage.record_create(
        system="kantata",
        object_type="expenses",
        parent_id=firm["workspace"].pk,
        status="unapproved",
        data={"amount_in_cents": 4200, "currency": "GBP", "user_id": str(firm["user"].pk)},
    )
    expenses_approve(ids=[expense.pk])

    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, approval_body(expense))

    stored = InboxItem.objects.get(system="psa", entity="expenses")
    assert (stored.external_id, stored.status) == (str(expense.pk), "pending")
    assert stored.payload["approved"] is True
    assert event_items().get().status == "processed"
    assert Delivery.objects.count() == 0


def test_an_approval_the_psa_no_longer_shows_as_approved_posts_nothing(
    client, psa, erp, firm, network, django_capture_on_commit_callbacks
):
    entry = submitted_time(firm)
    time_entries_approve(ids=[entry.pk])
    storage.record_update(
        record=entry, changes={"approval_status": "submitted"}, status="unapproved"
    )  # the manager took the approval back

    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, approval_body(entry))

    assert event_items().get().status == "processed"
    assert not InboxItem.objects.filter(entity="time_entries").exists()
    assert time_bills() == []


def test_an_event_its_task_could_not_process_stays_pending_and_the_next_cycle_posts_it(
    client, psa, erp, firm, network, transport_for, django_capture_on_commit_callbacks
):
    entry = submitted_time(firm)
    time_entries_approve(ids=[entry.pk])
    psa.credentials_set({"access_token": "revoked", "webhook_secret": SECRET})
    psa.save()

    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, approval_body(entry))

    assert event_items().get().status == "pending"
    failed = SyncRun.objects.get(entity="approval_events")
    assert failed.status == "failed"
    assert "configuration" in failed.error
    assert time_bills() == []

    psa.credentials_set({"access_token": kantata_views.ACCESS_TOKEN, "webhook_secret": SECRET})
    psa.save()
    run = sync_cycle_run(connections=[], transport_for=transport_for)

    assert run.status == "succeeded", run.error
    assert (run.created, run.delivered) == (1, 1)
    assert event_items().get().status == "processed"
    assert [b.external_id for b in time_bills()] == [f"KT-TE-{entry.pk}"]


def test_approvals_waiting_together_are_posted_by_one_task_and_the_others_find_them_done(
    client, psa, erp, firm, network, django_capture_on_commit_callbacks
):
    entries = [submitted_time(firm, minutes=60 * (n + 1)) for n in range(3)]
    time_entries_approve(ids=[e.pk for e in entries])
    with django_capture_on_commit_callbacks(execute=False) as enqueues:
        for entry in entries:
            post_event(client, approval_body(entry))

    results = [approval_event_process(inbox_item_id=item.pk) for item in event_items()]

    assert len(enqueues) == 3  # one task per stored event
    assert results[0]["events"] == 3
    assert results[1:] == [None, None]
    assert sorted(b.external_id for b in time_bills()) == sorted(f"KT-TE-{e.pk}" for e in entries)
    assert SyncRun.objects.filter(entity="approval_events").count() == 1


def test_an_event_that_carries_the_approved_record_is_posted_without_reading_the_psa(
    client, psa, erp, firm, network, sandbox, django_capture_on_commit_callbacks
):
    entry = submitted_time(firm)
    time_entries_approve(ids=[entry.pk])
    with httpx.Client(
        transport=httpx.WSGITransport(app=sandbox),
        base_url="http://sandbox.test",
        headers={"Authorization": f"Bearer {kantata_views.ACCESS_TOKEN}"},
    ) as psa_api:
        record = psa_api.get(f"/kantata/api/v1/time_entries/{entry.pk}.json").json()[
            "time_entries"
        ][str(entry.pk)]
    event = {**orjson.loads(approval_body(entry)), "subject": record}
    psa.credentials_set({"access_token": "revoked", "webhook_secret": SECRET})
    psa.save()  # any read of the PSA would now fail

    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, orjson.dumps(event))

    assert [b.external_id for b in time_bills()] == [f"KT-TE-{entry.pk}"]
    assert SyncRun.objects.get(entity="approval_events").status == "succeeded"


def test_the_cycle_processes_approval_events_after_master_data_and_before_time_entries(erp):
    _, order = processing_registry(erp=erp)
    events = order.index(("psa", "approval_events"))
    assert order.index(("psa", "workspaces")) < events < order.index(("psa", "time_entries"))


# -- through the broker and a real worker ----------------------------------------------------------
@pytest.mark.integration
@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_an_approval_reaches_the_erp_through_the_broker_and_a_real_worker(
    client, celery_worker_process
):
    from sandbox.core.server import sandbox_server_start

    served = sandbox_server_start(app=SandboxApp(faults=FaultBook(seed=1)))
    try:
        _through_a_worker(client, served.base_url)
    finally:
        served.stop()


def _through_a_worker(client, base_url: str) -> None:
    psa = Connection(
        name="kantata", system="psa", dialect="kantata", base_url=f"{base_url}/kantata/api/v1"
    )
    psa.credentials_set({"access_token": kantata_views.ACCESS_TOKEN, "webhook_secret": SECRET})
    psa.save()
    erp = Connection(
        name="netsuite", system="erp", dialect="netsuite", base_url=f"{base_url}/netsuite"
    )
    erp.credentials_set(
        {"client_id": netsuite_views.CLIENT_ID, "client_secret": netsuite_views.CLIENT_SECRET}
    )
    erp.save()
    # Written in-process into the same (committed) sandbox database the served one reads.
    firm = firm_build(ledger_build(SandboxApp(faults=FaultBook(seed=1), manage_connections=False)))
    entry = submitted_time(firm)
    time_entries_approve(ids=[entry.pk])

    answer = post_event(client, approval_body(entry))
    assert answer.status_code == 200, answer.content

    deadline = time.monotonic() + 60
    while not time_bills() and time.monotonic() < deadline:
        time.sleep(0.2)
    runs = list(SyncRun.objects.values_list("status", "error"))
    deliveries = list(Delivery.objects.values_list("state", "last_error"))
    assert time_bills(), f"nothing posted within 60 s; runs {runs}, deliveries {deliveries}"
    (bill,) = time_bills()
    assert bill.external_id == f"KT-TE-{entry.pk}"
    assert event_items().get().status == "processed"
    # The ERP holds the bill from its commit on; the worker records the answer once it lands.
    while Delivery.objects.get().state != "delivered" and time.monotonic() < deadline + 10:
        time.sleep(0.1)
    assert Delivery.objects.get().state == "delivered"


def test_an_approval_event_is_queued_apart_from_the_cycles():
    """The webhook's task goes to the `events` queue, which `make run` serves with a worker of
    its own, so a long cycle on the default queue never delays a posting."""
    from portal.celery import app

    route = app.amqp.router.route({}, "sync.approval_event_process", (), {})
    cycle = app.amqp.router.route({}, "sync.cycle_run", (), {})
    assert route["queue"].name == "events"
    assert cycle["queue"].name == "celery"
