"""The Kantata connector against the sandbox's Kantata REST v1 emulator (in-process)."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox import storage
from sandbox.models import SandboxRecord
from sync.connectors.base import PERMANENT, TRANSIENT, TransportError
from sync.connectors.http import DEFAULT_RATE_LIMIT_BACKOFF
from sync.integrations.kantata.client import CURSOR_EXPIRED, KantataConnector
from tests.connectors.conftest import SANDBOX_DATABASES, SleepRecorder

pytestmark = pytest.mark.django_db(databases=SANDBOX_DATABASES)

BASE = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def time_entries_seed(count: int, *, approved_every: int = 3, workspace_id: int = 1) -> int:
    """`count` entries, every `approved_every`-th unapproved; returns how many are approved."""
    rows = [
        SandboxRecord(
            system="kantata",
            object_type="time_entries",
            parent_id=workspace_id,
            status="unapproved" if n % approved_every == 0 else "approved",
            data={
                "user_id": str(1 + n % 7),
                "story_id": "11",
                "date_performed": "2026-01-05",
                "time_in_minutes": 60 + n % 5 * 15,
                "billable": True,
                "rate_in_cents": 12500,
                "currency": "EUR",
                "notes": f"entry {n}",
            },
            created_at=BASE,
            updated_at=BASE + dt.timedelta(minutes=n),
        )
        for n in range(count)
    ]
    storage.record_bulk_insert(records=rows)
    return sum(1 for r in rows if r.status == "approved")


@pytest.fixture
def kantata(sandbox_config, sandbox_transport):
    def make(**options) -> KantataConnector:
        http_options = {"sleep": SleepRecorder(), **options.pop("http_options", {})}
        return KantataConnector(
            sandbox_config("kantata"),
            transport=sandbox_transport,
            http_options=http_options,
            **options,
        )

    return make


def test_a_pull_of_approved_time_entries_pages_to_the_last_page(kantata):
    approved = time_entries_seed(650)
    pages = list(kantata().pull(entity="time_entries"))
    records = [r for p in pages for r in p.records]
    assert len(pages) == -(-approved // 200)
    assert len(records) == len({r["id"] for r in records}) == approved
    assert all(r["approved"] is True for r in records)
    assert pages[-1].next_cursor is None


def test_a_pull_of_all_time_entries_includes_the_unapproved(kantata):
    time_entries_seed(250)
    records = [
        r for p in kantata(approved_only=False).pull(entity="time_entries") for r in p.records
    ]
    assert len(records) == 250


def test_an_incremental_pull_uses_updated_after_and_reports_the_newest_change(kantata):
    time_entries_seed(30, approved_every=1000)
    pages = list(kantata().pull(entity="time_entries", since="2026-01-05T09:19:30+00:00"))
    records = [r for p in pages for r in p.records]
    assert len(records) == 10
    assert pages[-1].position == "2026-01-05T09:29:00+00:00"


def test_the_change_feed_is_followed_to_its_end_and_resumes_from_its_pull_position(kantata):
    for n in range(5):
        storage.record_create(
            system="kantata",
            object_type="workspaces",
            data={"title": f"Project {n}"},
            external_id=f"PRJ-{n}",
        )
    connector = kantata(per_page=2)
    pages = list(connector.pull(entity="change_events"))
    events = [e for p in pages for e in p.records]
    assert len(events) == 5
    assert {e["change_type"] for e in events} == {"created"}
    position = pages[-1].position
    storage.record_create(system="kantata", object_type="workspaces", data={"title": "Late"})
    later = [e for p in connector.pull(entity="change_events", since=position) for e in p.records]
    assert [e["subject_type"] for e in later] == ["Workspace"]


def test_an_expired_change_feed_cursor_is_a_permanent_cursor_expired_failure(kantata):
    old = storage.record_create(
        system="kantata",
        object_type="workspaces",
        data={"title": "Old"},
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=30),
    )
    storage.record_create(system="kantata", object_type="workspaces", data={"title": "New"})
    expired = storage.events_oldest_id(system="kantata")
    assert old.pk
    with pytest.raises(TransportError) as caught:
        list(kantata().pull(entity="change_events", since=str(expired)))
    assert (caught.value.kind, caught.value.vendor_code) == (PERMANENT, CURSOR_EXPIRED)


def test_a_workspace_upsert_creates_once_then_updates_by_external_reference(kantata):
    connector = kantata()
    created = connector.upsert_by_external_id(
        record_type="workspaces", external_id="PRJ-9", body={"title": "Rollout", "currency": "EUR"}
    )
    updated = connector.upsert_by_external_id(
        record_type="workspaces", external_id="PRJ-9", body={"title": "Rollout phase 2"}
    )
    assert created == updated
    found = connector.get_by_external_id(record_type="workspaces", external_id="PRJ-9")
    assert found["title"] == "Rollout phase 2"
    assert storage.record_queryset(system="kantata", object_type="workspaces").count() == 1


def test_a_workspace_kantata_refuses_is_a_permanent_failure_naming_the_field(kantata):
    with pytest.raises(TransportError) as caught:
        kantata().upsert_by_external_id(
            record_type="workspaces", external_id="PRJ-1", body={"title": "X", "currency": "XXX"}
        )
    error = caught.value
    assert (error.kind, error.status, error.vendor_code) == (PERMANENT, 422, "validation")
    assert "currency" in error.message


def test_kantatas_429_without_retry_after_is_transient_with_the_default_backoff(
    kantata, sandbox_app
):
    sandbox_app.faults.configure(system="kantata", changes={"rate_limit": 1})
    connector = kantata(http_options={"get_attempts": 1})
    assert connector.get_by_external_id(record_type="workspaces", external_id="A") is None
    with pytest.raises(TransportError) as caught:
        connector.get_by_external_id(record_type="workspaces", external_id="B")
    assert (caught.value.kind, caught.value.status) == (TRANSIENT, 429)
    assert caught.value.retry_after == DEFAULT_RATE_LIMIT_BACKOFF


def test_a_wrong_token_is_a_configuration_failure(sandbox_config, sandbox_transport):
    config = sandbox_config("kantata")
    wrong = type(config)(**{**config.__dict__, "credentials": {"access_token": "nope"}})
    with pytest.raises(TransportError) as caught:
        list(KantataConnector(wrong, transport=sandbox_transport).pull(entity="users"))
    assert (caught.value.kind, caught.value.status) == ("configuration", 401)


@pytest.mark.parametrize("entity", ["workspaces", "stories", "users", "assignments", "expenses"])
def test_every_psa_entity_is_pulled_to_its_last_page(kantata, entity):
    storage.record_bulk_insert(
        records=(
            SandboxRecord(
                system="kantata",
                object_type=entity,
                parent_id=1,
                status="approved",
                data={"title": f"{entity} {n}"},
                created_at=BASE,
                updated_at=BASE,
            )
            for n in range(45)
        )
    )
    pages = list(kantata(per_page=20).pull(entity=entity))
    assert len(pages) == 3
    assert len({r["id"] for p in pages for r in p.records}) == 45
