"""The sandbox Storage API on the `sandbox` alias."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError

from sandbox import storage
from sandbox.models import SandboxEvent, SandboxRecord
from sandbox.router import SANDBOX_DB

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def test_records_are_written_to_the_sandbox_database_only():
    storage.record_create(system="kantata", object_type="workspaces", data={"title": "x"})
    assert SandboxRecord.objects.using(SANDBOX_DB).count() == 1
    assert SandboxRecord.objects.db == SANDBOX_DB


def test_an_upsert_by_external_id_twice_keeps_one_record_with_merged_data():
    first = storage.record_upsert_by_external_id(
        system="salesforce", object_type="Account", external_id="C-1", data={"Name": "Acme"}
    )
    second = storage.record_upsert_by_external_id(
        system="salesforce", object_type="Account", external_id="C-1", data={"Type": "Customer"}
    )
    assert (first.created, second.created) == (True, False)
    assert first.record.pk == second.record.pk
    record = storage.record_get(
        system="salesforce", object_type="Account", record_id=first.record.pk
    )
    assert record.data == {"Name": "Acme", "Type": "Customer"}


def test_an_external_id_is_unique_per_system_and_object_type():
    storage.record_create(system="salesforce", object_type="Account", data={}, external_id="X")
    storage.record_create(system="salesforce", object_type="Contract", data={}, external_id="X")
    storage.record_create(system="scim", object_type="Account", data={}, external_id="X")
    with pytest.raises(IntegrityError):
        storage.record_create(system="salesforce", object_type="Account", data={}, external_id="X")


def test_every_write_appends_a_change_event_in_order():
    record = storage.record_create(system="kantata", object_type="workspaces", data={"title": "a"})
    storage.record_update(record=record, changes={"title": "b"}, status="active")
    events = storage.events_since(system="kantata", after_id=None, limit=10)
    assert [(e.action, e.record_id) for e in events] == [
        ("created", record.pk),
        ("updated", record.pk),
    ]
    assert events[1].data == {"changes": {"title": "b"}}
    assert storage.events_since(system="kantata", after_id=events[0].pk, limit=10) == events[1:]


def test_pruning_removes_only_events_older_than_the_cutoff():
    now = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    record = storage.record_create(
        system="kantata", object_type="stories", data={}, now=now - dt.timedelta(days=9)
    )
    storage.record_update(record=record, changes={"state": "started"}, now=now)
    assert storage.events_prune(system="kantata", older_than=now - dt.timedelta(days=7)) == 1
    assert SandboxEvent.objects.using(SANDBOX_DB).get().action == "updated"


def test_a_bulk_insert_writes_every_row_without_events_and_pages_by_id():
    moment = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    written = storage.record_bulk_insert(
        records=(
            SandboxRecord(
                system="kantata",
                object_type="time_entries",
                data={"n": n},
                created_at=moment,
                updated_at=moment,
            )
            for n in range(12_345)
        ),
        batch_size=5000,
    )
    assert written == 12_345
    queryset = storage.record_queryset(system="kantata", object_type="time_entries")
    first = storage.record_page_after(queryset=queryset, after_id=None, limit=10_000)
    rest = storage.record_page_after(queryset=queryset, after_id=first[-1].pk, limit=10_000)
    assert len(first) + len(rest) == 12_345
    assert SandboxEvent.objects.using(SANDBOX_DB).count() == 0


def test_a_stored_idempotent_answer_is_returned_to_the_second_writer():
    fingerprint = storage.request_fingerprint(method="POST", path="/v1/invoices", body=b"{}")
    stored = storage.idempotency_store(
        system="stripe", key="k-1", fingerprint=fingerprint, status_code=200, headers={}, body=b"1"
    )
    again = storage.idempotency_store(
        system="stripe", key="k-1", fingerprint=fingerprint, status_code=500, headers={}, body=b"2"
    )
    assert again.pk == stored.pk
    assert bytes(storage.idempotency_lookup(system="stripe", key="k-1").response_body) == b"1"


def test_data_text_filters_on_a_json_attribute_like_a_text_column():
    storage.record_create(system="scim", object_type="User", data={"userName": "Ann@X.example"})
    queryset = storage.record_queryset(system="scim", object_type="User").alias(
        user_name=storage.data_text("userName")
    )
    assert queryset.filter(user_name="Ann@X.example").count() == 1
    assert queryset.filter(user_name__iexact="ann@x.example").count() == 1
