"""Thousands of time postings through real Celery workers, a faulty ERP and SIGKILLed workers end
with every posting in the ERP's own records exactly once, or parked as an exception item."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Sum
from django.utils import timezone

from sandbox.models import SandboxRecord
from sync.integrations.registry import target_connector_for as connector_for
from sync.pipeline.models import Connection, Delivery, ExceptionItem
from sync.pipeline.outbox.claims import deliveries_enqueue
from sync.tasks import deliveries_sweep
from tests.integration.workers import CeleryWorkers, connected_to_port, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]

DELIVERIES = 2000
DEADLINE_SECONDS = 8 * 60
# Two cores: three prefork workers of two pool processes each keep both busy (with the sandbox
# and PostgreSQL) without thrashing.
WORKERS = 3
# SIGKILLs, each of a process caught mid-batch: pool processes, every third a whole worker.
KILLS = 8
KILL_EVERY_SECONDS = 2.0
SWEEP_EVERY_SECONDS = 1.0
SEND_BATCH = 20
FAN_OUT = 6
# 20% of requests go wrong: 429s and 5xx (502/504 are indeterminate for a write), answers
# slower than the client's 2 s timeout, and answers dropped after the ERP committed. The 429s
# are injected: the connection-wide in-flight budget keeps all workers together within the
# connection's max_concurrency, below NetSuite's concurrency limit, so that limit never trips.
ERP_FAULTS = {
    "error_rate": 0.16,
    "error_statuses": [429, 500, 502, 503, 504],
    "slow_rate": 0.04,
    "slow_seconds": 2.5,
    "drop_rate": 0.05,
    "concurrency_limit": 10,
}
CLIENT_TIMEOUT_SECONDS = 2
CLIENT_CONCURRENCY = 2


@pytest.fixture
def erp(served_sandbox) -> Connection:
    """The ERP connection, pointed at the served sandbox's NetSuite."""
    credentials = dict(
        served_sandbox.app.dialect("netsuite").credentials(served_sandbox.url("netsuite"))
    )
    connection = Connection(
        name="erp",
        system="erp",
        dialect="netsuite",
        base_url=credentials.pop("base_url"),
        max_concurrency=CLIENT_CONCURRENCY,
        timeout_seconds=CLIENT_TIMEOUT_SECONDS,
    )
    connection.credentials_set({key: str(value) for key, value in credentials.items()})
    connection.save()
    return connection


@pytest.fixture
def books(erp) -> dict[str, str]:
    """An ERP ledger to post time into, created through the connector before faults are on."""
    netsuite = connector_for(erp)
    try:
        ids = {
            "gbp": netsuite.create(record_type="currency", body={"name": "Pound", "symbol": "GBP"})
        }
        ids["uk"] = netsuite.create(
            record_type="subsidiary", body={"name": "LB UK", "currency": {"id": ids["gbp"]}}
        )
        ids["dept"] = netsuite.create(record_type="department", body={"name": "Consulting"})
        ids["customer"] = netsuite.create(
            record_type="customer", body={"companyName": "Acme", "subsidiary": {"id": ids["uk"]}}
        )
        ids["employee"] = netsuite.create(
            record_type="employee",
            body={
                "firstName": "Ada",
                "lastName": "L",
                "subsidiary": {"id": ids["uk"]},
                "department": {"id": ids["dept"]},
            },
        )
        ids["job"] = netsuite.create(
            record_type="job", body={"companyName": "Rollout", "parent": {"id": ids["customer"]}}
        )
        ids["task"] = netsuite.create(
            record_type="projectTask", body={"title": "Design", "company": {"id": ids["job"]}}
        )
        netsuite.create(
            record_type="accountingPeriod",
            body={
                "periodName": "Oct 2026",
                "startDate": "2026-10-01",
                "endDate": "2026-10-31",
                "subsidiary": {"id": ids["uk"]},
            },
        )
    finally:
        netsuite.close()
    return ids


def time_bill_hours(n: int) -> Decimal:
    return Decimal(1 + n % 8) + Decimal(n % 4) * Decimal("0.25")


def time_bill_deliveries(erp: Connection, books: dict[str, str], count: int) -> int:
    content_type = ContentType.objects.get_for_model(Connection)
    now = timezone.now()
    rows = []
    for n in range(1, count + 1):
        hours = time_bill_hours(n)
        rows.append(
            Delivery(
                connection=erp,
                operation="erp.time_bill.upsert",
                content_type=content_type,
                object_id=str(n),
                record_version=1,
                idempotency_key=f"erp:time_bill:{n}:v1",
                external_id=f"LB-TE-{n}",
                next_attempt_at=now,
                correlation_id=f"rel-{n}",
                payload={
                    "record_type": "timeBill",
                    "amount": str(hours * 120),
                    "currency": "GBP",
                    "body": {
                        "tranDate": f"2026-10-{1 + n % 28:02d}",
                        "hours": str(hours),
                        "rate": "120.00",
                        "isBillable": True,
                        "employee": {"id": books["employee"]},
                        "customer": {"id": books["job"]},
                        "caseTaskEvent": {"id": books["task"]},
                        "subsidiary": {"id": books["uk"]},
                    },
                },
            )
        )
    return deliveries_enqueue(deliveries=rows)


def delivery_states() -> Counter[str]:
    return Counter(dict(Delivery.objects.values_list("state").annotate(n=Count("id"))))


class Killer:
    """SIGKILLs a pool process (or, every third time, a whole worker) caught mid-batch, i.e.
    holding a connection to the ERP; a killed worker is replaced at once, a killed pool
    process by its worker."""

    def __init__(self, workers: CeleryWorkers, *, erp_port: int, seed: int) -> None:
        self.workers = workers
        self.erp_port = erp_port
        self.rng = random.Random(seed)  # which victim: reproducible, not security
        self.kills = 0
        self.pool_kills = 0
        self.worker_kills = 0
        self.processes = 0

    def kill_one_mid_batch(self) -> bool:
        busy = [
            (worker, pid)
            for worker in self.workers.live()
            for pid in worker.pool()
            if connected_to_port(pid, self.erp_port)
        ]
        if not busy:
            return False
        worker, pid = self.rng.choice(busy)
        if self.kills % 3 == 2:
            self.processes += self.workers.kill_worker(worker)
            self.worker_kills += 1
            self.workers.start()
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # it finished its batch and exited meanwhile
                return False
            self.processes += 1
            self.pool_kills += 1
        self.kills += 1
        return True


def test_thousands_of_postings_through_faults_and_killed_workers_land_exactly_once(
    served_sandbox, erp, books, celery_workers, capsys
):
    enqueued = time_bill_deliveries(erp, books, DELIVERIES)
    assert enqueued == DELIVERIES
    app = served_sandbox.app
    app.faults.configure(system="netsuite", changes=ERP_FAULTS)

    for _ in range(WORKERS):
        celery_workers.start()
    celery_workers.wait_ready()
    killer = Killer(
        celery_workers, erp_port=int(served_sandbox.base_url.rsplit(":", 1)[1]), seed=2026
    )

    started = time.monotonic()
    next_sweep = next_kill = started
    sweeps = []
    while True:
        states = delivery_states()
        if not states["pending"] + states["in_flight"]:
            break
        celery_workers.check()
        now = time.monotonic()
        if now - started > DEADLINE_SECONDS:
            pytest.fail(
                f"not done after {DEADLINE_SECONDS} s: {dict(states)}, "
                f"{killer.kills} kills, ERP answers {dict(app.statuses)}"
            )
        if now >= next_sweep:  # what beat does in production, faster
            sweeps.append(
                deliveries_sweep.apply_async(
                    kwargs={"fan_out": FAN_OUT, "limit": SEND_BATCH},
                    expires=5 * SWEEP_EVERY_SECONDS,
                )
            )
            next_sweep = now + SWEEP_EVERY_SECONDS
        if killer.kills < KILLS and now >= next_kill and killer.kill_one_mid_batch():
            next_kill = now + KILL_EVERY_SECONDS
        time.sleep(0.1)
    elapsed = time.monotonic() - started

    # Stop sending, and let any answer the ERP is still sleeping on finish, before counting.
    celery_workers.stop()
    wait_for(lambda: app.in_flight == 0, timeout=30, what="the ERP finishing its last requests")

    deliveries = list(Delivery.objects.values_list("id", "external_id", "state", "target_id"))
    bills = list(
        SandboxRecord.objects.filter(system="netsuite", object_type="timeBill").values_list(
            "external_id", "id", "data"
        )
    )
    per_external_id = Counter(external_id for external_id, _, _ in bills)
    bill_of = {external_id: (str(pk), data) for external_id, pk, data in bills}
    parked = set(
        ExceptionItem.objects.filter(delivery__isnull=False).values_list("delivery_id", flat=True)
    )
    duplicated = sorted(eid for eid, n in per_external_id.items() if n > 1)
    strays = sorted(set(per_external_id) - {eid for _, eid, _, _ in deliveries})
    lost, wrong_hours = [], []
    for pk, external_id, state, target_id in deliveries:
        posted = per_external_id[external_id] == 1
        if state == "delivered" and posted and bill_of[external_id][0] == target_id:
            n = int(external_id.rsplit("-", 1)[1])
            if Decimal(str(bill_of[external_id][1]["hours"])) != time_bill_hours(n):
                wrong_hours.append(external_id)
        elif not (state == "failed" and pk in parked):
            lost.append((external_id, state, per_external_id[external_id]))
    final = delivery_states()
    # What the sweeps put back after their senders were killed (sweeps that ran to the end).
    reclaimed = sum(r.result["reclaimed"] for r in sweeps if r.successful())
    attempts = Delivery.objects.aggregate(total=Sum("attempts"))["total"]
    server_errors = sum(n for status, n in app.statuses.items() if status >= 500)
    faulted = app.statuses[429] + server_errors + app.faults.slow + app.dropped
    with capsys.disabled():  # the figures are the point: shown even without -s
        print(
            f"\nreliability: deliveries={len(deliveries)} delivered={final['delivered']} "
            f"failed={final['failed']} lost={len(lost)} duplicated={len(duplicated)} "
            f"erp_time_bills={len(bills)} attempts={attempts} retries={attempts - len(deliveries)} "
            f"reclaimed={reclaimed} "
            f"kills={killer.kills} (pool processes {killer.pool_kills}, whole workers "
            f"{killer.worker_kills}; {killer.processes} processes) "
            f"erp_requests={app.requests} 429s={app.statuses[429]} 5xx={server_errors} "
            f"slow={app.faults.slow} dropped={app.dropped} "
            f"faulted={faulted / max(app.requests, 1):.1%} "
            f"elapsed={elapsed:.1f}s"
        )
    assert lost == []
    assert duplicated == []
    assert strays == []
    assert wrong_hours == []
    assert killer.kills >= 5
    assert reclaimed > 0  # the killed senders' deliveries were put back, not left in flight
    # Every kind of fault was met, not just configured.
    assert app.statuses[429] > 0
    assert server_errors > 0
    assert app.faults.slow > 0
    assert app.dropped > 0
    assert faulted / app.requests >= 0.20  # at least a fifth of the ERP's answers went wrong
