"""Deliveries reach the ERP sandbox exactly once, whatever the network does to the answers."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.models import SandboxRecord
from sandbox.netsuite import views as netsuite
from sync.pipeline.delivery import deliveries_send, deliveries_send_due
from sync.pipeline.delivery_budget import ProcessBudget, slot_budget_for
from sync.pipeline.models import Connection, Delivery, ExceptionItem

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
REST = "/netsuite/services/rest"


@pytest.fixture
def faults() -> FaultBook:
    return FaultBook(seed=7)


@pytest.fixture
def sandbox(faults) -> SandboxApp:
    return SandboxApp(faults=faults, manage_connections=False, sleep=lambda s: None)


@pytest.fixture
def erp(sandbox) -> Connection:
    # One at a time in-process: the sandbox then shares the test's transaction. Concurrent
    # sending is proven against a served sandbox on PostgreSQL (the reliability test).
    conn = Connection(
        name="erp",
        system="erp",
        dialect="netsuite",
        base_url="http://sandbox.test/netsuite",
        max_concurrency=1,
    )
    conn.credentials_set({"client_id": netsuite.CLIENT_ID, "client_secret": netsuite.CLIENT_SECRET})
    conn.save()
    return conn


@pytest.fixture
def books(sandbox) -> dict[str, str]:
    """An ERP ledger to post into: subsidiary, department, customer, employee, project, task."""
    with httpx.Client(
        transport=httpx.WSGITransport(app=sandbox), base_url="http://sandbox.test"
    ) as ns:
        token = ns.post(
            f"{REST}/auth/oauth2/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_id": netsuite.CLIENT_ID,
                "client_secret": netsuite.CLIENT_SECRET,
            },
        ).json()["access_token"]
        ns.headers["Authorization"] = f"Bearer {token}"

        def create(record_type: str, body: dict) -> str:
            answer = ns.post(f"{REST}/record/v1/{record_type}", json=body)
            assert answer.status_code == 204, answer.text
            return answer.headers["Location"].rsplit("/", 1)[-1]

        ids = {"gbp": create("currency", {"name": "Pound", "symbol": "GBP"})}
        ids["uk"] = create("subsidiary", {"name": "LB UK", "currency": {"id": ids["gbp"]}})
        ids["dept"] = create("department", {"name": "Consulting"})
        ids["customer"] = create(
            "customer", {"companyName": "Acme", "subsidiary": {"id": ids["uk"]}}
        )
        ids["employee"] = create(
            "employee",
            {
                "firstName": "Ada",
                "lastName": "L",
                "subsidiary": {"id": ids["uk"]},
                "department": {"id": ids["dept"]},
            },
        )
        ids["job"] = create("job", {"companyName": "Rollout", "parent": {"id": ids["customer"]}})
        ids["task"] = create("projectTask", {"title": "Design", "company": {"id": ids["job"]}})
        create(
            "accountingPeriod",
            {
                "periodName": "Oct 2026",
                "startDate": "2026-10-01",
                "endDate": "2026-10-31",
                "subsidiary": {"id": ids["uk"]},
            },
        )
        create(
            "accountingPeriod",
            {
                "periodName": "Sep 2026",
                "startDate": "2026-09-01",
                "endDate": "2026-09-30",
                "subsidiary": {"id": ids["uk"]},
                "closed": True,
            },
        )
    return ids


def time_bill_delivery(
    erp: Connection, books: dict[str, str], n: int, version: int = 1, hours: str = "7.50"
) -> Delivery:
    return Delivery.objects.create(
        connection=erp,
        operation="erp.time_bill.upsert",
        content_type=ContentType.objects.get_for_model(Connection),
        object_id=str(n),
        record_version=version,
        idempotency_key=f"erp:time_bill:{n}:v{version}",
        external_id=f"LB-TE-{n}",
        next_attempt_at=timezone.now(),
        correlation_id=f"c-{n}",
        payload={
            "record_type": "timeBill",
            "amount": "900.00",
            "currency": "GBP",
            "body": {
                "tranDate": "2026-10-14",
                "hours": hours,
                "rate": "120.00",
                "isBillable": True,
                "employee": {"id": books["employee"]},
                "customer": {"id": books["job"]},
                "caseTaskEvent": {"id": books["task"]},
                "subsidiary": {"id": books["uk"]},
            },
        },
    )


def erp_time_bills() -> list[SandboxRecord]:
    return list(SandboxRecord.objects.filter(system="netsuite", object_type="timeBill"))


def send(sandbox) -> object:
    return deliveries_send_due(connector_options={"transport": httpx.WSGITransport(app=sandbox)})


def test_a_time_bill_is_posted_once_with_exact_hours(erp, books, sandbox):
    delivery = time_bill_delivery(erp, books, 1)
    counts = send(sandbox)
    delivery.refresh_from_db()
    assert (counts.delivered, delivery.state) == (1, "delivered")
    (bill,) = erp_time_bills()
    assert bill.external_id == "LB-TE-1"
    assert Decimal(str(bill.data["hours"])) == Decimal("7.50")
    assert delivery.target_id == str(bill.id)


def test_a_new_version_updates_the_same_erp_record(erp, books, sandbox):
    time_bill_delivery(erp, books, 1)
    send(sandbox)
    time_bill_delivery(erp, books, 1, version=2, hours="8.00")
    send(sandbox)
    (bill,) = erp_time_bills()
    assert Decimal(str(bill.data["hours"])) == Decimal("8.00")
    assert Delivery.objects.filter(state="delivered").count() == 2


def test_a_send_claims_nothing_once_its_time_is_up_and_everything_within_it(erp, books, sandbox):
    """The send task claims for SEND_SECONDS, not a fixed batch: past its time it leaves the
    rest pending for the next task; within it, it sends the whole backlog in one call."""
    for n in range(3):
        time_bill_delivery(erp, books, n)
    transport = {"transport": httpx.WSGITransport(app=sandbox)}
    late = deliveries_send_due(limit=100, seconds=0, connector_options=transport)
    assert (late.claimed, late.delivered) == (0, 0)
    assert Delivery.objects.filter(state="pending").count() == 3
    counts = deliveries_send_due(limit=100, seconds=60, connector_options=transport)
    assert (counts.claimed, counts.delivered) == (3, 3)
    assert len(erp_time_bills()) == 3


@pytest.fixture
def live_erp(erp):
    """The sandbox on a real loopback port (only a real socket can be dropped)."""
    from sandbox.core.server import sandbox_server_start

    running = sandbox_server_start(app=SandboxApp(faults=FaultBook(seed=7)))
    credentials = dict(running.app.dialect("netsuite").credentials(running.url("netsuite")))
    erp.base_url = credentials.pop("base_url")
    erp.credentials_set({k: str(v) for k, v in credentials.items()})
    erp.save()
    yield running
    running.stop()


@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_a_response_dropped_after_the_erp_committed_leaves_one_posting(erp, books, live_erp):
    delivery = time_bill_delivery(erp, books, 1)
    live_erp.app.faults.configure(system="netsuite", changes={"drop_rate": 1.0})
    deliveries_send_due()  # the ERP writes; the answer (and any look-up) is lost
    assert len(erp_time_bills()) == 1
    delivery.refresh_from_db()
    if delivery.state != "delivered":  # not resolved yet: the retry upserts the same key
        assert delivery.state == "pending"
        live_erp.app.faults.reset(seed=7)
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        deliveries_send_due()
        delivery.refresh_from_db()
    assert delivery.state == "delivered"
    assert len(erp_time_bills()) == 1


def test_an_erp_refusal_parks_the_posting_with_netsuites_reason(erp, books, sandbox):
    delivery = time_bill_delivery(erp, books, 1)
    delivery.payload["body"]["tranDate"] = "2026-09-15"  # September is closed in the ERP
    delivery.save()
    send(sandbox)
    delivery.refresh_from_db()
    assert delivery.state == "failed"
    item = ExceptionItem.objects.get(delivery=delivery)
    assert item.queue == "time_and_expense"
    assert "closed" in item.message
    assert not erp_time_bills()


def test_sending_named_deliveries_sends_those_and_leaves_the_rest_for_the_sweep(
    erp, books, sandbox
):
    wanted = [time_bill_delivery(erp, books, n) for n in (1, 2)]
    other = time_bill_delivery(erp, books, 3)
    counts = deliveries_send(
        delivery_ids=[d.id for d in wanted],
        connector_options={"transport": httpx.WSGITransport(app=sandbox)},
    )
    assert (counts.claimed, counts.delivered) == (2, 2)
    assert sorted(b.external_id for b in erp_time_bills()) == ["LB-TE-1", "LB-TE-2"]
    other.refresh_from_db()
    assert (other.state, other.attempts) == ("pending", 0)
    again = deliveries_send(
        delivery_ids=[d.id for d in wanted],
        connector_options={"transport": httpx.WSGITransport(app=sandbox)},
    )
    assert again.claimed == 0  # already delivered: nothing to send twice


def test_a_refused_login_stops_the_run_and_gives_the_claimed_deliveries_back_uncounted(
    erp, books, sandbox
):
    for n in range(1, 6):
        time_bill_delivery(erp, books, n)
    erp.credentials_set({"client_id": netsuite.CLIENT_ID, "client_secret": "wrong"})
    erp.save()
    counts = send(sandbox)
    assert counts.delivered == 0
    assert counts.released == 4  # the first was refused; the others were never sent
    assert set(Delivery.objects.values_list("state", "attempts")) == {("pending", 0)}
    assert ExceptionItem.objects.filter(queue="integration_ops").count() == 1
    assert not erp_time_bills()


def test_a_run_gives_its_in_flight_slot_back_when_it_ends(erp, books, sandbox):
    for n in range(1, 4):
        time_bill_delivery(erp, books, n)
    assert send(sandbox).delivered == 3
    budget = slot_budget_for(erp)  # the connection's only slot (max_concurrency 1)
    try:
        assert budget.try_acquire() is not None
    finally:
        budget.close()


def test_a_priority_sender_waiting_is_seen_by_the_other_senders_of_its_connection_only():
    waiting = ProcessBudget(connection_id=9_871, limit=2)
    backlog = ProcessBudget(connection_id=9_871, limit=2)
    elsewhere = ProcessBudget(connection_id=9_872, limit=2)
    assert not backlog.priority_waiting()

    waiting.priority_announce()
    waiting.priority_announce()  # said once per sender, however often it asks
    assert backlog.priority_waiting()
    assert not elsewhere.priority_waiting()

    waiting.close()  # a sender that ends stops waiting
    assert not backlog.priority_waiting()
