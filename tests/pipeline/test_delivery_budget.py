"""Several senders share one connection's in-flight budget: together they never send the ERP
more requests at once than it allows, a dead sender's slots come back, and recording outcomes
as requests complete still leaves exactly one ERP record per delivery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, connections
from django.utils import timezone

from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.core.server import sandbox_server_start
from sandbox.models import SandboxRecord
from sync.integrations.registry import target_connector_for as connector_for
from sync.pipeline.delivery import deliveries_send, deliveries_send_due
from sync.pipeline.delivery_budget import AdvisoryLockBudget, delivery_slot_key
from sync.pipeline.models import Connection, Delivery

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]


class CountingSandbox(SandboxApp):
    """The sandbox app, counting the statuses it answers and the most requests it held."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()

    def _respond(self, environ):
        response, dropped = super()._respond(environ)
        with self._lock:
            self.statuses[response.status if dropped is None else 0] += 1
        return response, dropped


@pytest.fixture
def served():
    if connection.vendor != "postgresql":
        pytest.fail("The shared budget is PostgreSQL's advisory locks: run `make test`.")
    running = sandbox_server_start(app=CountingSandbox(faults=FaultBook(seed=11)))
    yield running
    running.stop()


def erp_connect(served, *, max_concurrency: int) -> Connection:
    credentials = dict(served.app.dialect("netsuite").credentials(served.url("netsuite")))
    erp = Connection(
        name="erp",
        system="erp",
        dialect="netsuite",
        base_url=credentials.pop("base_url"),
        max_concurrency=max_concurrency,
    )
    erp.credentials_set({key: str(value) for key, value in credentials.items()})
    erp.save()
    return erp


def books_create(erp: Connection) -> dict[str, str]:
    netsuite = connector_for(erp)
    try:

        def create(record_type: str, body: dict) -> str:
            return netsuite.create(record_type=record_type, body=body)

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
    finally:
        netsuite.close()
    return ids


def time_bills_enqueue(erp: Connection, books: dict[str, str], numbers, *, version: int = 1):
    content_type = ContentType.objects.get_for_model(Connection)
    Delivery.objects.bulk_create(
        [
            Delivery(
                connection=erp,
                operation="erp.time_bill.upsert",
                content_type=content_type,
                object_id=str(n),
                record_version=version,
                idempotency_key=f"erp:time_bill:{n}:v{version}",
                external_id=f"LB-TE-{n}",
                next_attempt_at=timezone.now(),
                correlation_id=f"budget-{n}",
                payload={
                    "record_type": "timeBill",
                    "amount": "900.00",
                    "currency": "GBP",
                    "body": {
                        "tranDate": "2026-10-14",
                        "hours": str(Decimal(version) + Decimal("0.25")),
                        "rate": "120.00",
                        "isBillable": True,
                        "employee": {"id": books["employee"]},
                        "customer": {"id": books["job"]},
                        "caseTaskEvent": {"id": books["task"]},
                        "subsidiary": {"id": books["uk"]},
                    },
                },
            )
            for n in numbers
        ]
    )


def senders_run(erp: Connection, *, senders: int, limit: int) -> None:
    """`senders` threads (each with its own database session, as worker processes have),
    each sending until none of the connection's deliveries is open."""
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            while Delivery.objects.filter(
                connection=erp, state__in=["pending", "in_flight"]
            ).exists():
                if not deliveries_send_due(limit=limit).claimed:
                    time.sleep(0.05)
        except BaseException as exc:  # reported by the test, not swallowed
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors


def erp_time_bills() -> list[SandboxRecord]:
    return list(SandboxRecord.objects.filter(system="netsuite", object_type="timeBill"))


def test_two_senders_sharing_a_budget_of_two_provoke_no_429(served):
    erp = erp_connect(served, max_concurrency=2)
    books = books_create(erp)
    served.app.faults.configure(
        system="netsuite", changes={"concurrency_limit": 2, "latency_seconds": 0.02}
    )
    time_bills_enqueue(erp, books, range(1, 41))
    served.app.statuses.clear()

    senders_run(erp, senders=2, limit=10)

    assert served.app.statuses[429] == 0
    assert Delivery.objects.filter(state="delivered").count() == 40
    assert len(erp_time_bills()) == 40


def test_a_slot_held_by_a_killed_sender_is_given_back_by_postgresql(served):
    erp = erp_connect(served, max_concurrency=1)
    key = delivery_slot_key(connection_id=erp.id, slot=0)
    params = connection.settings_dict
    holder = subprocess.Popen(  # a sender in another process, holding the only slot
        [
            sys.executable,
            "-c",
            (
                "import sys, time, psycopg\n"
                "c = psycopg.connect(host=sys.argv[1], port=sys.argv[2], user=sys.argv[3],"
                " dbname=sys.argv[4], password=sys.argv[5] or None)\n"
                "assert c.execute('SELECT pg_try_advisory_lock(%s)', [int(sys.argv[6])])"
                ".fetchone()[0]\n"
                "print('holding', flush=True)\n"
                "time.sleep(600)\n"
            ),
            str(params["HOST"]),
            str(params["PORT"]),
            params["USER"],
            params["NAME"],
            params.get("PASSWORD") or "",
            str(key),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        budget = AdvisoryLockBudget(connection_id=erp.id, limit=1)
        assert budget.try_acquire() is None

        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        deadline = time.monotonic() + 10
        slot = budget.try_acquire()
        while slot is None and time.monotonic() < deadline:
            time.sleep(0.05)
            slot = budget.try_acquire()
        assert slot == 0
        budget.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()

    books = books_create(erp)
    time_bills_enqueue(erp, books, range(1, 6))
    assert deliveries_send_due(limit=10).delivered == 5


def test_outcomes_recorded_as_they_complete_leave_one_erp_record_per_delivery(served):
    erp = erp_connect(served, max_concurrency=4)
    books = books_create(erp)
    # Answers lost after the ERP committed, and failures: the lost ones are looked up first.
    served.app.faults.configure(
        system="netsuite",
        changes={
            "drop_rate": 0.15,
            "error_rate": 0.1,
            "error_statuses": [502, 503],
            "latency_seconds": 0.01,
        },
    )
    time_bills_enqueue(erp, books, range(1, 31))
    time_bills_enqueue(erp, books, range(1, 11), version=2)  # ten of them changed since

    for _ in range(30):  # retries are due after a backoff: bring them forward each round
        senders_run(erp, senders=2, limit=15)
        if not Delivery.objects.exclude(state="delivered").exists():
            break
        Delivery.objects.filter(state="pending").update(next_attempt_at=timezone.now())

    assert Delivery.objects.filter(state="delivered").count() == 40
    bills = {bill.external_id: bill for bill in erp_time_bills()}
    assert sorted(bills) == sorted(f"LB-TE-{n}" for n in range(1, 31))
    for delivery in Delivery.objects.all():
        assert delivery.target_id == str(bills[delivery.external_id].id)


@pytest.mark.parametrize("limit", [1, 2])  # 1: the backlog sends inline, on its calling thread
def test_an_approval_sent_now_goes_ahead_of_a_backlog_holding_every_slot(served, limit):
    erp = erp_connect(served, max_concurrency=limit)
    books = books_create(erp)
    served.app.faults.configure(
        system="netsuite", changes={"concurrency_limit": limit, "latency_seconds": 0.05}
    )
    time_bills_enqueue(erp, books, range(1, 201))  # 5-10 s of backlog at 20/s a slot
    errors: list[BaseException] = []

    def backlog() -> None:
        try:
            deliveries_send_due(limit=200, seconds=30)
        except BaseException as exc:  # reported by the test, not swallowed
            errors.append(exc)
        finally:
            connections.close_all()

    sender = threading.Thread(target=backlog)
    sender.start()
    try:
        deadline = time.monotonic() + 30
        while Delivery.objects.filter(state="delivered").count() < 10:
            assert time.monotonic() < deadline, errors or "the backlog sender sent nothing"
            time.sleep(0.02)  # the backlog sender holds both slots now
        time_bills_enqueue(erp, books, [9001])
        approval = Delivery.objects.get(object_id="9001")

        sent_before = Delivery.objects.filter(state="delivered").count()
        counts = deliveries_send(delivery_ids=[approval.id])
        sent_meanwhile = Delivery.objects.filter(state="delivered").count() - sent_before - 1

        backlog_left = Delivery.objects.filter(state__in=["pending", "in_flight"]).count()
    finally:
        sender.join(timeout=60)
    assert not errors, errors
    assert counts.delivered == 1  # not given back for want of a slot
    assert backlog_left > 50  # sent while most of the backlog still waited
    # ... and ahead of the rest of what the backlog sender had claimed (50 at a time): it
    # handed a slot back after the request in hand, not at the end of its chunk.
    assert sent_meanwhile < 25
    assert served.app.statuses[429] == 0
    assert Delivery.objects.filter(state="delivered").count() == 201


def test_a_priority_wait_is_seen_by_other_sessions_and_ends_with_its_session(served):
    erp = erp_connect(served, max_concurrency=2)
    backlog = AdvisoryLockBudget(connection_id=erp.id, limit=2)
    said: dict[str, bool] = {}
    steps = {
        name: threading.Event()
        for name in ("announced", "checked", "withdrawn", "checked again", "announced again")
    }

    def priority_sender() -> None:  # its own thread: its own database session
        try:
            waiting = AdvisoryLockBudget(connection_id=erp.id, limit=2)
            waiting.priority_announce()
            said["sees itself"] = waiting.priority_waiting()
            steps["announced"].set()
            steps["checked"].wait(10)
            waiting.priority_withdraw()
            steps["withdrawn"].set()
            steps["checked again"].wait(10)
            waiting.priority_announce()
        finally:
            connections.close_all()  # the session ends with its lock still announced
            steps["announced again"].set()

    thread = threading.Thread(target=priority_sender)
    thread.start()
    assert steps["announced"].wait(10)
    said["while announced"] = backlog.priority_waiting()
    steps["checked"].set()
    assert steps["withdrawn"].wait(10)
    said["after withdrawal"] = backlog.priority_waiting()
    steps["checked again"].set()
    assert steps["announced again"].wait(10)
    thread.join(10)
    deadline = time.monotonic() + 5
    while backlog.priority_waiting() and time.monotonic() < deadline:
        time.sleep(0.05)  # the server ends the closed session's backend
    said["after its session ended"] = backlog.priority_waiting()

    assert said == {
        "sees itself": False,
        "while announced": True,
        "after withdrawal": False,
        "after its session ended": False,
    }
