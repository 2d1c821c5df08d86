"""A cycle pulls every connection into the inbox page by page, processes it and delivers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import json
from functools import partial
from types import SimpleNamespace

import httpx
import pytest
from django.db import transaction
from django.utils import timezone

from sandbox import storage
from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.kantata import views as kantata_views
from sandbox.netsuite import views as netsuite_views
from sync.errors import DomainError
from sync.integrations import registry
from sync.integrations.kantata.client import KantataConnector
from sync.pipeline import cycle
from sync.pipeline.cycle import inbox_process, sync_backfill_run, sync_cycle_run
from sync.pipeline.models import Connection, InboxItem, SyncRun
from sync.pipeline.pull import (
    connection_pull,
    position_cap,
    position_earlier,
    position_later,
    pull_position_get,
    pull_position_store,
)

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


class Crash(Exception):
    """Stands in for a worker dying between two pages."""


@pytest.fixture
def sandbox() -> SandboxApp:
    return SandboxApp(faults=FaultBook(seed=3), manage_connections=False, sleep=lambda s: None)


@pytest.fixture
def transport_for(sandbox):
    return lambda connection: httpx.WSGITransport(app=sandbox)


@pytest.fixture
def small_pages(monkeypatch):
    """Kantata pages of 2 records, so a handful of records spans several pages."""
    kantata = registry.INTEGRATIONS["kantata"]
    monkeypatch.setitem(
        registry.INTEGRATIONS,
        "kantata",
        dataclasses.replace(kantata, source=partial(KantataConnector, per_page=2)),
    )


@pytest.fixture
def psa() -> Connection:
    conn = Connection(
        name="kantata",
        system="psa",
        dialect="kantata",
        base_url="http://sandbox.test/kantata/api/v1",
        max_concurrency=1,
    )
    conn.credentials_set({"access_token": kantata_views.ACCESS_TOKEN})
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


def kantata_users(n: int) -> list:
    return [
        storage.record_create(
            system="kantata", object_type="users", data={"full_name": f"Consultant {i}"}
        )
        for i in range(n)
    ]


def new_run(kind: str = "pull") -> SyncRun:
    return SyncRun.objects.create(kind=kind, started_at=timezone.now())


def pull_users(psa, sandbox, **options) -> int:
    return connection_pull(
        connection=psa,
        entity="users",
        run=new_run(),
        transport=httpx.WSGITransport(app=sandbox),
        **options,
    )


def test_pulling_the_same_pages_twice_stores_nothing_new_and_moves_no_pull_position_back(
    psa, sandbox, small_pages
):
    kantata_users(5)
    assert pull_users(psa, sandbox) == 5
    after_first = pull_position_get(connection=psa, entity="users")
    assert after_first.cursor is None  # a complete pull
    assert after_first.since

    pull_users(psa, sandbox)  # the position has whole seconds: the last second is read again
    connection_pull(
        connection=psa,
        entity="users",
        run=new_run(),
        since="2000-01-01T00:00:00Z",
        transport=httpx.WSGITransport(app=sandbox),
    )  # a full re-read (backfill)

    assert InboxItem.objects.filter(system="psa", entity="users").count() == 5
    after_second = pull_position_get(connection=psa, entity="users")
    assert position_later(after_first.since, after_second.since) == after_second.since


def test_a_crash_after_the_second_page_leaves_the_pull_position_there(psa, sandbox, small_pages):
    kantata_users(5)  # three pages: 2 + 2 + 1

    def crash_after_second(progress):
        if progress.pages == 2:
            raise Crash

    with pytest.raises(Crash):
        pull_users(psa, sandbox, on_page=crash_after_second)

    position = pull_position_get(connection=psa, entity="users")
    assert (position.since, position.cursor) == (None, "3")  # resume at page 3 of this pull
    assert InboxItem.objects.filter(entity="users").count() == 4

    pages = []
    assert pull_users(psa, sandbox, on_page=pages.append) == 1  # only the page not committed
    assert len(pages) == 1
    assert InboxItem.objects.filter(entity="users").count() == 5
    assert pull_position_get(connection=psa, entity="users").cursor is None


def test_a_records_change_during_a_crashed_pull_is_not_skipped_on_resume(psa, sandbox, small_pages):
    users = kantata_users(5)

    def crash_after_first(progress):
        if progress.pages == 1:
            raise Crash

    with pytest.raises(Crash):
        pull_users(psa, sandbox, on_page=crash_after_first)
    storage.record_update(
        record=users[0],
        changes={"full_name": "Renamed"},
        now=timezone.now() + dt.timedelta(minutes=1),
    )
    pull_users(psa, sandbox)
    pull_users(psa, sandbox)  # the next incremental pull sees the rename
    names = [i.payload["full_name"] for i in InboxItem.objects.filter(external_id=str(users[0].pk))]
    assert names == ["Consultant 0", "Renamed"]


def test_a_change_behind_the_pull_is_read_next_time_though_a_later_page_was_newer(
    psa, sandbox, small_pages
):
    users = kantata_users(5)

    def change_while_paging(progress):
        if progress.pages == 1:  # u0 is behind us now; u4 (page 3) is changed "later"
            storage.record_update(record=users[0], changes={"full_name": "Changed behind"})
            storage.record_update(
                record=users[4],
                changes={"full_name": "Changed ahead"},
                now=timezone.now() + dt.timedelta(minutes=10),
            )

    pull_users(psa, sandbox, on_page=change_while_paging)
    pull_users(psa, sandbox)

    names = set(
        InboxItem.objects.filter(external_id=str(users[0].pk)).values_list(
            "payload__full_name", flat=True
        )
    )
    assert names == {"Consultant 0", "Changed behind"}


def test_a_backfill_reads_its_window_and_leaves_the_pull_position_alone(psa, sandbox, small_pages):
    kantata_users(3)
    pull_users(psa, sandbox)
    before = pull_position_get(connection=psa, entity="users")
    fields = ("since", "cursor", "reached", "started_at", "updated_at")
    InboxItem.objects.all().delete()

    run = sync_backfill_run(
        connection=psa,
        entity="users",
        since="2000-01-01T00:00:00+00:00",
        until="2999-01-01T00:00:00+00:00",
        transport=httpx.WSGITransport(app=sandbox),
    )

    assert (run.kind, run.status, run.pulled) == ("backfill", "succeeded", 3)
    assert InboxItem.objects.count() == 3
    after = pull_position_get(connection=psa, entity="users")
    assert [getattr(after, f) for f in fields] == [getattr(before, f) for f in fields]


def test_the_kantata_change_feed_is_pulled_from_its_last_position(psa, sandbox):
    kantata_users(2)  # each creation appends a "created" change event
    first = connection_pull(
        connection=psa,
        entity="change_events",
        run=new_run(),
        transport=httpx.WSGITransport(app=sandbox),
    )
    position = pull_position_get(connection=psa, entity="change_events")
    kantata_users(1)
    second = connection_pull(
        connection=psa,
        entity="change_events",
        run=new_run(),
        transport=httpx.WSGITransport(app=sandbox),
    )

    assert (first, second) == (2, 1)
    assert position.since.isdigit()
    assert int(pull_position_get(connection=psa, entity="change_events").since) > int(
        position.since
    )
    events = InboxItem.objects.filter(entity="change_events")
    assert [e.payload["change_type"] for e in events] == ["created"] * 3


def test_an_expired_change_feed_position_restarts_the_feed_instead_of_failing_for_ever(
    psa, sandbox
):
    kantata_users(2)
    pull = partial(
        connection_pull,
        connection=psa,
        entity="change_events",
        transport=httpx.WSGITransport(app=sandbox),
    )
    pull(run=new_run())
    expired = pull_position_get(connection=psa, entity="change_events").since
    storage.events_prune(system="kantata", older_than=timezone.now() + dt.timedelta(days=1))
    kantata_users(1)

    assert pull(run=new_run()) == 1  # 410 cursor_expired, then from the oldest kept event
    assert int(pull_position_get(connection=psa, entity="change_events").since) > int(expired)


def test_a_backfill_window_drops_records_changed_after_until(psa, sandbox):
    kantata_users(2)
    run = sync_backfill_run(
        connection=psa,
        entity="users",
        since="2000-01-01T00:00:00+00:00",
        until="2001-01-01T00:00:00+00:00",
        transport=httpx.WSGITransport(app=sandbox),
    )
    assert run.pulled == 0
    assert not InboxItem.objects.exists()


def counting_processor(calls: list, *, inbox_ids, run):
    calls.append(list(inbox_ids))
    InboxItem.objects.filter(id__in=inbox_ids).update(status="processed")
    return SimpleNamespace(created=len(inbox_ids), updated=0, unchanged=0, refused=0, failed=0)


def test_a_cycle_pulls_processes_and_records_a_run_with_counts(psa, erp, transport_for):
    kantata_users(3)
    calls: list = []
    run = sync_cycle_run(
        transport_for=transport_for,
        processors={("psa", "users"): partial(counting_processor, calls)},
        order=[("psa", "users")],
    )
    run.refresh_from_db()
    assert run.kind == "cycle"
    assert run.status == "succeeded", run.error
    assert (run.pulled, run.created, run.failed, run.delivered) == (3, 3, 0, 0)
    assert run.finished_at >= run.started_at
    assert calls == [list(InboxItem.objects.filter(entity="users").values_list("id", flat=True))]
    assert set(InboxItem.objects.values_list("entity", flat=True)) == {"users"}
    assert set(run.stage_seconds) == {"pull", "process", "deliver"}
    # Every planned entity of both connections was pulled once and has a position now.
    assert {(p.connection.name, p.entity) for p in psa.pullposition_set.all()} == {
        ("kantata", e) for e in registry.INTEGRATIONS["kantata"].pull_plan
    }


def test_a_second_cycle_over_unchanged_sources_stores_and_processes_nothing(
    psa, erp, transport_for
):
    kantata_users(2)
    calls: list = []
    options = {
        "processors": {("psa", "users"): partial(counting_processor, calls)},
        "order": [("psa", "users")],
        "transport_for": transport_for,
    }
    sync_cycle_run(**options)
    second = sync_cycle_run(**options)
    assert second.created == 0
    assert len(calls) == 1
    assert InboxItem.objects.count() == 2


def test_a_system_that_refuses_the_credentials_fails_the_run_but_not_the_other_pulls(
    psa, erp, transport_for
):
    psa.credentials_set({"access_token": "wrong"})
    psa.save()
    kantata_users(1)
    run = sync_cycle_run(transport_for=transport_for, processors={}, order=[])
    assert run.status == "failed"
    assert "pull kantata/workspaces: configuration 401" in run.error
    assert run.error.count("pull kantata/") == 1  # stopped after the first refusal
    assert erp.pullposition_set.count() == len(registry.INTEGRATIONS["netsuite"].pull_plan)


def test_a_processor_that_refuses_a_batch_leaves_it_pending_and_fails_the_run(psa, transport_for):
    kantata_users(2)

    def refusing(*, inbox_ids, run):
        raise DomainError("the mapping for users is not published")

    run = sync_cycle_run(
        transport_for=transport_for,
        processors={("psa", "users"): refusing},
        order=[("psa", "users")],
    )
    assert run.status == "failed"
    assert "process psa/users: the mapping for users is not published" in run.error
    assert run.failed == 2
    assert InboxItem.objects.filter(status="pending").count() == 2


def test_an_unexpected_error_marks_the_run_failed_and_propagates(psa, transport_for):
    kantata_users(1)

    def broken(*, inbox_ids, run):
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        sync_cycle_run(
            transport_for=transport_for,
            processors={("psa", "users"): broken},
            order=[("psa", "users")],
        )
    run = SyncRun.objects.get(kind="cycle")
    assert run.status == "failed"
    assert "unexpected" in run.error
    assert run.finished_at is not None


def test_inbox_processing_sends_batches_in_the_registered_order():
    from sync.pipeline.inbox import inbox_store

    inbox_store(system="psa", entity="time_entries", records=[("t1", {"id": "t1"})])
    inbox_store(system="erp", entity="job", records=[(str(n), {"id": n}) for n in range(5)])
    seen: list = []

    def recorder(name):
        def process(*, inbox_ids, run):
            seen.append((name, len(inbox_ids)))
            InboxItem.objects.filter(id__in=inbox_ids).update(status="processed")
            return SimpleNamespace(created=len(inbox_ids))

        return process

    totals = inbox_process(
        run=new_run("process"),
        batch_size=2,
        processors={("erp", "job"): recorder("job"), ("psa", "time_entries"): recorder("time")},
        order=[("erp", "job"), ("psa", "time_entries")],
    )
    assert seen == [("job", 2), ("job", 2), ("job", 1), ("time", 1)]
    assert (totals.items, totals.batches, totals.created) == (6, 4, 6)


def test_time_entries_are_processed_last_and_posted_to_the_enabled_erp(erp):
    processors, order = cycle.processing_registry(erp=erp)
    assert order[-1] == ("psa", "time_entries")
    assert processors[("psa", "time_entries")].keywords == {"erp": erp}


@pytest.mark.parametrize(
    ("current", "candidate", "later"),
    [
        (None, "2026-10-01T00:00:00+00:00", "2026-10-01T00:00:00+00:00"),
        ("2026-10-02T00:00:00+00:00", "2026-10-01T23:00:00-02:00", "2026-10-01T23:00:00-02:00"),
        ("2026-10-02T00:00:00+00:00", "2026-10-01T00:00:00+00:00", "2026-10-02T00:00:00+00:00"),
        ("2026-10-02 10:00:00", "2026-10-02 09:59:59", "2026-10-02 10:00:00"),
        ("9", "10", "10"),
        ("10", None, "10"),
    ],
)
def test_a_pull_position_only_moves_forward(current, candidate, later):
    assert position_later(current, candidate) == later


@pytest.mark.parametrize(
    ("dialect", "entity", "cap"),
    [
        ("kantata", "users", "2026-10-01T09:58:00+00:00"),
        ("netsuite", "job", "2026-10-01 09:58:00"),
        ("kantata", "change_events", None),
    ],
)
def test_the_next_pull_starts_no_later_than_this_pulls_start(dialect, entity, cap):
    started = dt.datetime(2026, 10, 1, 10, 0, tzinfo=dt.UTC)
    integration = registry.integration_for(dialect)
    assert position_cap(integration=integration, entity=entity, started=started) == cap
    assert position_earlier("2026-10-01T11:00:00+00:00", cap) == (
        cap or "2026-10-01T11:00:00+00:00"
    )
    assert position_earlier(None, cap) is None


def test_a_cursor_of_any_length_is_kept_so_a_crashed_pull_resumes_where_it_stopped(psa):
    run = new_run()
    cursor = "x" * 2000  # a vendor's opaque query locator
    with transaction.atomic():
        pull_position_store(
            connection=psa,
            entity="users",
            since="2026-10-01T00:00:00+00:00",
            cursor=cursor,
            reached=None,
            started_at=run.started_at,
        )
    assert pull_position_get(connection=psa, entity="users").cursor == cursor


MIGRATION = importlib.import_module("sync.pipeline.migrations.0002_pull_position")


@pytest.mark.parametrize(
    ("value", "position"),
    [
        ("", (None, None, None, None)),
        ("2026-10-01 10:00:00", ("2026-10-01 10:00:00", None, "2026-10-01 10:00:00", None)),
        (
            '{"since":"a","cursor":"3","mark":"b","started":"2026-10-01T00:00:00+00:00"}',
            ("a", "3", "b", dt.datetime(2026, 10, 1, tzinfo=dt.UTC)),
        ),
    ],
)
def test_an_old_pull_position_value_migrates_to_columns_and_back(value, position):
    assert MIGRATION.position_from_value(value) == position
    assert MIGRATION.value_from_position(*position) == (value or "")


# -- end to end: approved PSA time → ERP posting, through one cycle -----------------------------
NS_REST = "/netsuite/services/rest"


def ledger_build(sandbox: SandboxApp) -> dict[str, str]:
    """A NetSuite ledger to post into (as in test_delivery), written through its REST API, with
    the project and task keyed by the external ids Ledgerbridge sends."""
    with httpx.Client(
        transport=httpx.WSGITransport(app=sandbox), base_url="http://sandbox.test"
    ) as ns:
        token = ns.post(
            f"{NS_REST}/auth/oauth2/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_id": netsuite_views.CLIENT_ID,
                "client_secret": netsuite_views.CLIENT_SECRET,
            },
        ).json()["access_token"]
        ns.headers["Authorization"] = f"Bearer {token}"

        def create(record_type: str, body: dict) -> str:
            answer = ns.post(f"{NS_REST}/record/v1/{record_type}", json=body)
            assert answer.status_code == 204, answer.text
            return answer.headers["Location"].rsplit("/", 1)[-1]

        ids = {"gbp": create("currency", {"name": "Pound", "symbol": "GBP"})}
        ids["uk"] = create("subsidiary", {"name": "LB UK", "currency": {"id": ids["gbp"]}})
        ids["customer"] = create(
            "customer", {"companyName": "Acme", "subsidiary": {"id": ids["uk"]}}
        )
        ids["dept"] = create("department", {"name": "Consulting"})
        ids["employee"] = create(
            "employee", {"firstName": "Ada", "lastName": "L", "subsidiary": {"id": ids["uk"]}}
        )
        ids["job"] = create(
            "job",
            {"companyName": "Rollout", "externalId": "P-100", "parent": {"id": ids["customer"]}},
        )
        ids["task"] = create(
            "projectTask", {"title": "Design", "externalId": "T-1", "company": {"id": ids["job"]}}
        )
        create(
            "accountingPeriod",
            {
                "periodName": "Oct 2026",
                "startDate": "2026-10-01",
                "endDate": "2026-10-31",
                "subsidiary": {"id": ids["uk"]},
            },
        )
    return ids


@pytest.fixture
def ledger(sandbox) -> dict[str, str]:
    return ledger_build(sandbox)


@pytest.fixture
def firm(ledger, django_user_model):
    """The canonical project, task and worker, linked to the PSA sandbox's records."""
    import datetime as dt_

    from django.contrib.contenttypes.models import ContentType

    from sync.mappings.services import (
        mapping_entry_set,
        mapping_set_create,
        mapping_version_create_draft,
        mapping_version_publish,
        mapping_version_submit,
    )
    from sync.models import AccountingPeriod, ExternalRef
    from tests import factories as f

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
        start_date=dt_.date(2026, 10, 1),
        end_date=dt_.date(2026, 10, 31),
        status="open",
    )
    admin = django_user_model.objects.create_user("mapper")
    mapping_set = mapping_set_create(
        slug="legal-entity", name="Legal entity → subsidiary", kind="legal_entity", user=admin
    )
    draft = mapping_version_create_draft(mapping_set=mapping_set, user=admin)
    mapping_entry_set(version=draft, source_value="UK01", target_value=ledger["uk"], user=admin)
    mapping_version_submit(version=draft, user=admin)
    mapping_version_publish(version=draft, effective_from=dt_.date(2026, 1, 1), user=None)
    return {"workspace": workspace, "story": story, "user": user}


def approved_time(firm, minutes: int = 450):
    return storage.record_create(
        system="kantata",
        object_type="time_entries",
        parent_id=firm["workspace"].pk,
        status="approved",
        data={
            "workspace_id": str(firm["workspace"].pk),
            "story_id": str(firm["story"].pk),
            "user_id": str(firm["user"].pk),
            "date_performed": "2026-10-14",
            "time_in_minutes": minutes,
            "billable": True,
            "rate_in_cents": 12000,
            "currency": "GBP",
        },
    )


def erp_time_bills() -> list:
    from sandbox.models import SandboxRecord

    return list(SandboxRecord.objects.filter(system="netsuite", object_type="timeBill"))


def time_cycle(erp, transport_for) -> SyncRun:
    from sync.pipeline.time_posting.flow import time_entries_process

    registry = {("psa", "time_entries"): partial(time_entries_process, erp=erp)}
    return sync_cycle_run(transport_for=transport_for, processors=registry, order=list(registry))


def test_a_cycle_takes_approved_psa_time_to_the_erp_or_an_exception_and_never_twice(
    psa, erp, firm, transport_for
):
    from sync.pipeline.models import Delivery, ExceptionItem

    approved_time(firm)
    first = time_cycle(erp, transport_for)
    second = time_cycle(erp, transport_for)

    assert first.status == "succeeded", first.error
    assert first.created == 1
    assert first.delivered + first.failed == 1  # posted, or parked with the ERP's reason
    assert (second.created, second.delivered, second.failed) == (0, 0, 0)
    delivery = Delivery.objects.get()
    if delivery.state == "failed":
        assert ExceptionItem.objects.filter(delivery=delivery, status="open").count() == 1
    assert len(erp_time_bills()) == (1 if delivery.state == "delivered" else 0)


def test_a_cycle_posts_approved_psa_time_to_the_erp_exactly_once(psa, erp, firm, transport_for):
    approved_time(firm)
    first = time_cycle(erp, transport_for)
    time_cycle(erp, transport_for)
    assert (first.created, first.failed, first.delivered) == (1, 0, 1)
    (bill,) = erp_time_bills()
    assert str(bill.data["hours"]) in {"7.5", "7.50"}


# -- tasks and logs ------------------------------------------------------------------------------
def test_the_cycle_task_is_named_bounded_and_retries_only_database_outages():
    from django.db import OperationalError

    from sync.tasks_cycle import cycle_run

    assert cycle_run.name == "sync.cycle_run"
    assert cycle_run.max_retries == 3
    assert OperationalError in cycle_run.autoretry_for
    assert Exception not in cycle_run.autoretry_for


def test_the_cycle_task_returns_early_when_its_connection_is_gone(psa):
    from sync.tasks_cycle import cycle_run

    psa.enabled = False
    psa.save()
    assert cycle_run.apply(kwargs={"connection_ids": [psa.pk]}).get() is None
    assert cycle_run.apply(kwargs={"connection_ids": [99999]}).get() is None
    assert not SyncRun.objects.exists()


def test_the_cycle_task_runs_a_cycle_and_returns_its_counts():
    from sync.tasks_cycle import cycle_run

    drops = Connection.objects.create(name="drops", system="psa", dialect="csv")
    result = cycle_run.apply(kwargs={"connection_ids": [drops.pk]}).get()
    run = SyncRun.objects.get()
    assert result["run_id"] == run.pk
    assert result["status"] == "succeeded"
    assert run.connection == drops


def test_beat_runs_one_cycle_per_enabled_pulled_connection_at_its_interval(psa, erp):
    from sync.tasks_cycle import beat_schedule_sync

    erp.pull_interval_seconds = 300
    erp.save()
    Connection.objects.create(name="off", system="hr", dialect="scim", enabled=False)
    Connection.objects.create(name="drops", system="psa", dialect="csv")
    schedule = beat_schedule_sync()
    assert set(schedule) == {"sync-cycle-kantata", "sync-cycle-netsuite"}
    entry = schedule["sync-cycle-netsuite"]
    assert entry["task"] == "sync.cycle_run"
    assert entry["schedule"] == 300.0
    assert entry["kwargs"] == {"connection_ids": [erp.pk]}


def test_log_lines_written_while_processing_carry_the_run_and_correlation_ids(psa, transport_for):
    import io
    import logging

    from sync.connectors.base import correlation_scope
    from sync.logging import ContextFilter, JsonFormatter, KeyValueFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(KeyValueFormatter())
    log = logging.getLogger("tests.cycle.processor")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    kantata_users(1)

    def logging_processor(*, inbox_ids, run):
        with correlation_scope("deal-7"):
            log.info("processing %s items", len(inbox_ids), extra={"entity": "users"})
        return SimpleNamespace()

    try:
        run = sync_cycle_run(
            transport_for=transport_for,
            processors={("psa", "users"): logging_processor},
            order=[("psa", "users")],
        )
    finally:
        log.removeHandler(handler)
    line = stream.getvalue().strip()
    assert f"run_id={run.pk}" in line
    assert "correlation_id=deal-7" in line
    assert 'msg="processing 1 items"' in line
    assert "entity=users" in line

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "outside", None, None)
    ContextFilter().filter(record)
    assert json.loads(JsonFormatter().format(record))["run_id"] == "-"
