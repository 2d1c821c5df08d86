"""Exception items: one open item per record and stage, grouped by cause, every action audited."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sync.pipeline.exception_items import (
    ExceptionActionRefused,
    Failure,
    exception_item_assign,
    exception_item_comment,
    exception_item_ignore,
    exception_item_resolve,
    exception_items_close_for,
    exception_items_raise,
)
from sync.pipeline.models import ExceptionItem

pytestmark = pytest.mark.django_db


def closed_period(record_key: str, period: str = "2026-09") -> Failure:
    return Failure(
        record_key=record_key,
        stage="validate",
        queue="time_and_expense",
        code="PERIOD_CLOSED",
        message=f"The ERP accounting period {period} is closed.",
        cause=period,
        suggested_fix="Ask finance to reopen the period or move the entry to an open one.",
        money_at_risk=Decimal("450.00"),
        currency="EUR",
    )


def test_a_rerun_that_fails_again_updates_the_open_item_instead_of_adding_one():
    exception_items_raise(failures=[closed_period("psa:time_entry:1")])
    exception_items_raise(failures=[closed_period("psa:time_entry:1")])
    item = ExceptionItem.objects.get()
    assert item.occurrences == 2
    assert item.money_at_risk == Decimal("450.00")
    assert item.currency == "EUR"


def test_the_same_record_failing_at_another_stage_is_a_separate_item():
    exception_items_raise(failures=[closed_period("psa:time_entry:1")])
    other = Failure(
        record_key="psa:time_entry:1",
        stage="map",
        queue="mapping",
        code="UNMAPPED_LEGAL_ENTITY",
        message="No mapping for entity X.",
    )
    exception_items_raise(failures=[other])
    assert ExceptionItem.objects.count() == 2


def test_items_with_one_cause_share_a_root_cause_and_other_causes_do_not():
    exception_items_raise(
        failures=[
            closed_period("psa:time_entry:1"),
            closed_period("psa:time_entry:2"),
            closed_period("psa:time_entry:3", period="2026-08"),
        ]
    )
    groups = {i.record_key: i.root_cause for i in ExceptionItem.objects.all()}
    assert groups["psa:time_entry:1"] == groups["psa:time_entry:2"]
    assert groups["psa:time_entry:3"] != groups["psa:time_entry:1"]


def test_after_an_item_is_resolved_a_new_failure_opens_a_new_item(django_user_model):
    user = django_user_model.objects.create_user("fin")
    (item,) = exception_items_raise(failures=[closed_period("psa:time_entry:1")])
    exception_item_resolve(item=item, reason="Period reopened and entry posted.", user=user)
    exception_items_raise(failures=[closed_period("psa:time_entry:1")])
    assert ExceptionItem.objects.filter(status="open").count() == 1
    assert ExceptionItem.objects.count() == 2


def test_every_action_is_in_the_item_history_with_the_person_who_took_it(django_user_model):
    alice = django_user_model.objects.create_user("alice")
    bob = django_user_model.objects.create_user("bob")
    (item,) = exception_items_raise(failures=[closed_period("psa:time_entry:1")], run_id=None)
    exception_item_assign(item=item, assignee=bob, user=alice)
    exception_item_comment(item=item, body="Asked finance to reopen September.", user=bob)
    exception_item_ignore(item=item, reason="Duplicate of a manual journal.", user=bob)

    actors = list(item.history.order_by("history_date").values_list("history_actor", "status"))
    assert actors == [
        ("system:pipeline", "open"),
        ("user:alice", "in_progress"),
        ("user:bob", "ignored"),
    ]
    assert item.comments.get().author == bob


def test_closing_needs_a_reason_and_a_closed_item_cannot_be_closed_again(django_user_model):
    user = django_user_model.objects.create_user("fin")
    (item,) = exception_items_raise(failures=[closed_period("psa:time_entry:1")])
    with pytest.raises(ExceptionActionRefused, match="reason"):
        exception_item_resolve(item=item, reason="  ", user=user)
    exception_item_resolve(item=item, reason="Fixed.", user=user)
    with pytest.raises(ExceptionActionRefused, match="already"):
        exception_item_ignore(item=item, reason="x", user=user)


def test_records_that_pass_a_stage_later_close_their_open_items():
    exception_items_raise(failures=[closed_period("psa:time_entry:1")])
    closed = exception_items_close_for(
        record_keys=["psa:time_entry:1"], stage="validate", reason="Passed on replay."
    )
    assert closed == 1
    assert ExceptionItem.objects.get().status == "resolved"


def test_a_record_key_longer_than_its_column_names_one_item_and_closes_it():
    long_key = "delivery:erp.time_bill.upsert:" + "x" * 255
    other = long_key[:-1] + "y"  # the same first 190 characters, another record
    exception_items_raise(failures=[closed_period(long_key)])
    exception_items_raise(failures=[closed_period(long_key), closed_period(other)])
    items = {item.record_key: item for item in ExceptionItem.objects.all()}
    assert len(items) == 2
    assert all(len(key) <= 255 for key in items)
    assert sorted(item.occurrences for item in items.values()) == [1, 2]

    assert exception_items_close_for(record_keys=[long_key], stage="validate", reason="ok") == 1
    assert ExceptionItem.objects.filter(status="open").count() == 1
