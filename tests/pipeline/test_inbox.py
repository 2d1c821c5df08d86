"""Every payload is stored before processing; the same payload twice is stored once."""

from __future__ import annotations

import pytest
from django.db import transaction

from sync.pipeline.inbox import inbox_store, payload_hash
from sync.pipeline.models import InboxItem
from sync.pipeline.pull import pull_position_get, pull_position_store

pytestmark = pytest.mark.django_db

PAGE = [("101", {"id": 101, "hours": "7.50"}), ("102", {"id": 102, "hours": "3.00"})]


def test_pulling_the_same_page_twice_stores_each_payload_once():
    first = inbox_store(system="psa", entity="time_entry", records=PAGE)
    second = inbox_store(system="psa", entity="time_entry", records=PAGE)
    assert len(first.new) == 2
    assert (len(second.new), second.skipped) == (0, 2)
    assert InboxItem.objects.count() == 2


def test_a_changed_payload_is_stored_as_a_new_version():
    inbox_store(system="psa", entity="time_entry", records=PAGE)
    changed = inbox_store(
        system="psa", entity="time_entry", records=[("101", {"id": 101, "hours": "8.00"})]
    )
    assert len(changed.new) == 1
    assert InboxItem.objects.filter(external_id="101").count() == 2


def store_since(connection, since: str) -> None:
    pull_position_store(
        connection=connection,
        entity="time_entry",
        since=since,
        cursor=None,
        reached=since,
        started_at=None,
    )


def test_the_payload_hash_ignores_key_order():
    assert payload_hash({"a": 1, "b": 2}) == payload_hash({"b": 2, "a": 1})


@pytest.mark.django_db(transaction=True)
def test_a_pull_position_moves_only_inside_the_batch_transaction(erp_connection):
    with pytest.raises(RuntimeError, match="transaction"):
        store_since(erp_connection, "2026-10-01")
    with transaction.atomic():
        store_since(erp_connection, "2026-10-01")
    assert pull_position_get(connection=erp_connection, entity="time_entry").since == "2026-10-01"


@pytest.mark.django_db(transaction=True)
def test_a_pull_position_rolls_back_with_a_failed_batch(erp_connection):
    def failing_batch():
        with transaction.atomic():
            inbox_store(system="psa", entity="time_entry", records=PAGE)
            store_since(erp_connection, "2026-11-01")
            raise ZeroDivisionError  # the batch fails after the pull position moved

    with pytest.raises(ZeroDivisionError):
        failing_batch()
    assert pull_position_get(connection=erp_connection, entity="time_entry").since is None
    assert InboxItem.objects.count() == 0


def test_a_value_that_changes_back_to_an_earlier_one_is_stored_again():
    for hours in ("8.00", "6.00", "8.00"):
        inbox_store(system="psa", entity="time_entry", records=[("7", {"id": 7, "hours": hours})])
    payloads = InboxItem.objects.order_by("id").values_list("payload", flat=True)
    stored = [p["hours"] for p in payloads]
    assert stored == ["8.00", "6.00", "8.00"]


def test_each_call_returns_exactly_the_rows_it_wrote_even_at_the_same_instant():
    from django.utils import timezone

    now = timezone.now()
    a = inbox_store(system="psa", entity="time_entry", records=[("A", {"v": 1})], now=now)
    b = inbox_store(
        system="psa", entity="time_entry", records=[("A", {"v": 1}), ("B", {"v": 1})], now=now
    )
    assert [i.external_id for i in a.new] == ["A"]
    assert [i.external_id for i in b.new] == ["B"]
    assert b.skipped == 1
