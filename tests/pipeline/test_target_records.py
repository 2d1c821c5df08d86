"""What the ERP already holds by our key: pulled time bills, their links, and the look-up."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import httpx
import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sandbox import storage
from sandbox.models import SandboxRecord
from sandbox.netsuite import views as netsuite_views
from sync.integrations.netsuite.time_bills import KEY_PREFIX as TIME_BILL_KEY_PREFIX
from sync.integrations.netsuite.time_bills import RECORD_TYPE as TIME_BILL
from sync.integrations.netsuite.time_bills import time_bill_key
from sync.models import ExternalRef, TimeEntry
from sync.pipeline.inbox import inbox_store
from sync.pipeline.master_data import PROCESSORS
from sync.pipeline.models import Connection, ExceptionItem, InboxItem, SyncRun, TargetRecord
from sync.pipeline.target_records import (
    target_records_known,
    target_records_upsert,
    time_bills_process,
)
from tests.factories import ExternalRefFactory, TimeEntryFactory

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])
BASE = dt.datetime(2026, 9, 1, 2, 0, tzinfo=dt.UTC)


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
def transport_for():
    from sandbox.core.app import SandboxApp
    from sandbox.core.faults import FaultBook

    app = SandboxApp(faults=FaultBook(seed=3), manage_connections=False, sleep=lambda s: None)
    return lambda connection: httpx.WSGITransport(app=app)


def erp_history(*entry_ids: int, without_key: int = 0) -> list[SandboxRecord]:
    """Time bills posted in the ERP before Ledgerbridge: `KT-TE-<id>` each, plus some keyed
    by nothing (entered in the ERP itself)."""
    bills = [
        SandboxRecord(
            system="netsuite",
            object_type="timeBill",
            external_id=f"KT-TE-{n}" if n is not None else None,
            status="2",
            data={"tranDate": "2026-08-31", "hours": 7.5, "approvalStatus": "2"},
            created_at=BASE,
            updated_at=BASE + dt.timedelta(seconds=i),
        )
        for i, n in enumerate([*entry_ids, *[None] * without_key])
    ]
    storage.record_bulk_insert(records=bills)
    return list(
        SandboxRecord.objects.filter(system="netsuite", object_type="timeBill").order_by("id")
    )


def bill_cycle(transport_for) -> SyncRun:
    from sync.pipeline.cycle import sync_cycle_run

    key = ("erp", TIME_BILL)
    return sync_cycle_run(
        transport_for=transport_for, processors={key: PROCESSORS[key]}, order=[key], deliver=False
    )


def held(connection: Connection) -> dict[str, tuple[str, str]]:
    return {
        r.external_id: (r.target_id, r.source)
        for r in TargetRecord.objects.filter(connection=connection)
    }


def process(payloads: list[dict], *, connection: Connection | None = None):
    stored = inbox_store(
        system="erp",
        entity=TIME_BILL,
        connection=connection,
        records=[
            (str(p.get("id", n)) if isinstance(p, dict) else str(n), p)
            for n, p in enumerate(payloads)
        ],
    )
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    return PROCESSORS["erp", TIME_BILL](inbox_ids=[i.id for i in stored.new], run=run)


def entry_with_psa_id(psa_id: str) -> TimeEntry:
    return TimeEntryFactory(psa_id=psa_id)


def erp_ref_of(entry: TimeEntry) -> str | None:
    return (
        ExternalRef.objects.filter(
            system="erp",
            content_type=ContentType.objects.get_for_model(TimeEntry),
            object_id=str(entry.pk),
        )
        .values_list("external_id", flat=True)
        .first()
    )


# --- pulled through the cycle ----------------------------------------------------------------


def test_a_cycle_pulls_the_erps_time_bills_into_target_records_by_our_key(erp, transport_for):
    bills = erp_history(101, 102, 103, without_key=2)

    run = bill_cycle(transport_for)

    assert run.status == "succeeded", run.error
    assert run.pulled == 5
    assert held(erp) == {b.external_id: (str(b.pk), "pulled") for b in bills if b.external_id}
    assert (run.created, run.unchanged, run.failed) == (3, 2, 0)
    assert not InboxItem.objects.exclude(status="processed").exists()


def test_a_second_cycle_over_the_same_erp_changes_nothing(erp, transport_for):
    erp_history(101, 102)
    bill_cycle(transport_for)
    before = list(TargetRecord.objects.order_by("id").values())

    again = bill_cycle(transport_for)

    assert again.status == "succeeded", again.error
    assert (again.created, again.updated) == (0, 0)
    assert list(TargetRecord.objects.order_by("id").values()) == before


def test_processing_the_same_time_bills_again_writes_nothing(erp):
    entry = entry_with_psa_id("101")
    rows = [{"id": "9001", "externalid": "KT-TE-101"}, {"id": "9002", "externalid": "KT-TE-102"}]
    first = process(rows, connection=erp)
    records = list(TargetRecord.objects.order_by("id").values())
    history = ExternalRef.history.count()
    InboxItem.objects.update(status="pending")  # as a replay does

    second = time_bills_process(
        inbox_ids=list(InboxItem.objects.values_list("id", flat=True)),
        run=SyncRun.objects.create(kind="replay", started_at=timezone.now()),
    )

    assert (first.created, first.unchanged) == (2, 0)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 2)
    assert list(TargetRecord.objects.order_by("id").values()) == records
    assert ExternalRef.history.count() == history
    assert erp_ref_of(entry) == "9001"


# --- the look-up time posting makes ------------------------------------------------------------


def test_the_look_up_returns_exactly_the_keys_the_target_holds(erp, django_assert_num_queries):
    other = Connection.objects.create(name="other-erp", system="erp", dialect="netsuite")
    target_records_upsert(
        connection=erp,
        record_type=TIME_BILL,
        source="pulled",
        known={"KT-TE-1": "501", "KT-TE-2": "502", "KT-TE-3": "503"},
    )
    target_records_upsert(
        connection=other, record_type=TIME_BILL, source="pulled", known={"KT-TE-4": "504"}
    )
    target_records_upsert(
        connection=erp, record_type="expenseReport", source="pulled", known={"KT-TE-5": "505"}
    )

    with django_assert_num_queries(1):
        known = target_records_known(
            connection=erp,
            record_type=TIME_BILL,
            external_ids={"KT-TE-1", "KT-TE-3", "KT-TE-4", "KT-TE-5", "KT-TE-9"},
        )

    assert known == {"KT-TE-1": "501", "KT-TE-3": "503"}
    with django_assert_num_queries(0):
        assert target_records_known(connection=erp, record_type=TIME_BILL, external_ids=[]) == {}


def test_a_deliverys_answer_is_recorded_and_a_later_pull_confirms_it(erp):
    target_records_upsert(
        connection=erp.pk, record_type=TIME_BILL, source="delivered", known={"KT-TE-7": "707"}
    )
    assert held(erp) == {"KT-TE-7": ("707", "delivered")}

    counts = process([{"id": "707", "externalid": "KT-TE-7"}], connection=erp)

    assert held(erp) == {"KT-TE-7": ("707", "pulled")}
    assert (counts.created, counts.updated) == (0, 1)


def test_a_bill_posted_again_under_the_same_key_takes_the_new_id(erp):
    process([{"id": "800", "externalid": "KT-TE-8"}], connection=erp)
    process([{"id": "801", "externalid": "KT-TE-8"}], connection=erp)
    assert held(erp) == {"KT-TE-8": ("801", "pulled")}


# --- links to the canonical time entries --------------------------------------------------------


def test_a_bill_of_a_known_time_entry_links_the_entry_to_it_with_history(erp):
    entry = entry_with_psa_id("4242")
    unknown = f"{TIME_BILL_KEY_PREFIX}999999"

    counts = process(
        [
            {"id": "9100", "externalid": "KT-TE-4242"},
            {"id": "9101", "externalid": unknown},
            {"id": "9102", "externalid": "SOMEONE-ELSES-KEY"},
        ],
        connection=erp,
    )

    assert erp_ref_of(entry) == "9100"
    ref = ExternalRef.objects.get(system="erp", external_id="9100")
    (row,) = ref.history.all()
    assert row.history_actor.startswith("run:")
    # Every keyed bill is held, linked to an entry or not.
    assert set(held(erp)) == {"KT-TE-4242", unknown, "SOMEONE-ELSES-KEY"}
    assert (counts.created, counts.failed) == (3, 0)
    assert ExternalRef.objects.filter(system="erp").count() == 1


def test_a_bill_contradicting_an_existing_link_is_a_reference_conflict_and_changes_no_link(erp):
    entry = entry_with_psa_id("55")
    ExternalRefFactory(record=entry, system="erp", external_id="600")

    counts = process([{"id": "601", "externalid": "KT-TE-55"}], connection=erp)

    assert erp_ref_of(entry) == "600"
    (item,) = ExceptionItem.objects.filter(status="open")
    assert (item.code, item.queue, item.record_key) == (
        "REFERENCE_CONFLICT",
        "integration_ops",
        "erp:timeBill:601",
    )
    assert f"time entry {entry.pk} is linked to ERP timeBill 600" in item.message
    assert InboxItem.objects.get().status == "parked"
    assert counts.failed == 1
    assert held(erp) == {"KT-TE-55": ("601", "pulled")}  # what the ERP holds, all the same


def test_a_malformed_bill_is_parked_with_its_reason_and_writes_nothing(erp):
    counts = process([{"id": "not-a-number", "externalid": ["KT-TE-1"]}, "garbage"], connection=erp)

    items = ExceptionItem.objects.filter(status="open", code="MALFORMED_PAYLOAD")
    assert items.count() == 2
    assert {i.queue for i in items} == {"integration_ops"}
    assert any(
        "`id` must be NetSuite's internal id" in i.message
        and "`externalid` must be text" in i.message
        for i in items
    )
    assert set(InboxItem.objects.values_list("status", flat=True)) == {"parked"}
    assert counts.failed == 2
    assert not TargetRecord.objects.exists()


def test_a_bill_stored_without_its_connection_belongs_to_the_enabled_erp(erp):
    process([{"id": "9200", "externalid": "KT-TE-92"}])
    assert held(erp) == {"KT-TE-92": ("9200", "pulled")}


def test_a_bill_with_no_erp_connection_to_hold_it_is_parked_for_integration_ops(db):
    counts = process([{"id": "9300", "externalid": "KT-TE-93"}])
    (item,) = ExceptionItem.objects.filter(status="open")
    assert (item.code, item.queue) == ("CONNECTION_UNKNOWN", "integration_ops")
    assert counts.failed == 1
    assert not TargetRecord.objects.exists()


def test_time_bills_are_keyed_as_time_posting_writes_them_and_read_before_psa_time():
    from sync.pipeline.master_data_order import PROCESSING_ORDER

    assert time_bill_key("1852") == "KT-TE-1852"
    position = {key: n for n, key in enumerate(PROCESSING_ORDER)}
    psa = [n for (system, _), n in position.items() if system == "psa"]
    assert position["erp", TIME_BILL] < min(psa)


def _statements(captured) -> Counter:
    return Counter(
        re.sub(r"_django_curs_\w+", "cursor", q["sql"]).split("(")[0].split(" WHERE")[0][:60]
        for q in captured.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    )


def test_a_batch_takes_a_fixed_number_of_queries_whatever_its_size(erp):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def statements(first: int, count: int) -> Counter:
        for n in range(first, first + count):
            entry_with_psa_id(str(n))
        rows = [
            {"id": str(10_000 + n), "externalid": f"KT-TE-{n}"} for n in range(first, first + count)
        ]
        with CaptureQueriesContext(connection) as captured:
            process(rows, connection=erp)
        return _statements(captured)

    statements(1, 2)  # warms the content-type cache
    small, large = statements(100, 5), statements(1000, 150)
    reads = lambda c: {k: v for k, v in c.items() if not k.startswith("INSERT")}  # noqa: E731
    assert reads(large) == reads(small)
    assert all(n <= 4 for k, n in large.items() if k.startswith("INSERT")), large
    assert TargetRecord.objects.count() == 157
