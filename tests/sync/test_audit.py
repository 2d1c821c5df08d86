"""History rows name who acted: the request user, the acting run or system, or system:unknown."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from sync.audit import acting_as, actor_for_user, audited_bulk_create, audited_bulk_update
from sync.errors import UnknownStatus
from sync.models import CANONICAL_MODELS, Currency, TimeEntry
from tests.factories import (
    FACTORIES,
    CurrencyFactory,
    ProjectFactory,
    TaskFactory,
    TimeEntryFactory,
    WorkerFactory,
    unsaved_batch,
)

MODELS = [pytest.param(model, id=model.__name__) for model in CANONICAL_MODELS]


@pytest.mark.parametrize("model", MODELS)
def test_creating_a_record_writes_one_history_row_naming_the_acting_run(db, model, history_of):
    with acting_as("run:42"):
        record = FACTORIES[model]()

    rows = history_of(model, [record])
    assert [(row.history_type, row.history_actor, row.version) for row in rows] == [
        ("+", "run:42", 1)
    ]


@pytest.mark.parametrize("model", MODELS)
def test_updating_a_record_in_a_request_writes_a_history_row_naming_the_user(
    db, model, request_user, history_of
):
    record = FACTORIES[model]()
    record.mapping_versions = {"legal-entity": 3}  # content on every model
    record.save()

    rows = history_of(model, [record])
    assert [(row.history_type, row.history_actor) for row in rows] == [
        ("+", "user:alice"),
        ("~", "user:alice"),
    ]
    assert rows[-1].mapping_versions == {"legal-entity": 3}
    assert rows[-1].version == 2


@pytest.mark.parametrize("model", MODELS)
def test_a_write_outside_any_request_or_acting_block_is_attributed_to_system_unknown(
    db, model, history_of
):
    record = FACTORIES[model]()
    record.correlation_id = "deal-0002"
    record.save()

    assert [row.history_actor for row in history_of(model, [record])] == [
        "system:unknown",
        "system:unknown",
    ]


@pytest.mark.parametrize("model", MODELS)
def test_bulk_create_writes_one_history_row_per_record_naming_the_actor(db, model, history_of):
    objs = unsaved_batch(model, 3)

    created = audited_bulk_create(model=model, objs=objs, actor="run:7")

    assert all(obj.pk is not None for obj in created)
    rows = history_of(model, created)
    assert len(rows) == 3
    assert {(row.history_type, row.history_actor, row.version) for row in rows} == {
        ("+", "run:7", 1)
    }


@pytest.mark.parametrize("model", MODELS)
def test_bulk_update_writes_one_history_row_per_record_and_bumps_the_version(db, model, history_of):
    created = audited_bulk_create(model=model, objs=unsaved_batch(model, 3), actor="run:7")
    loaded = list(model.objects.filter(pk__in=[obj.pk for obj in created]))
    for obj in loaded:
        obj.mapping_versions = {"legal-entity": 4}  # content on every model

    updated = audited_bulk_update(
        model=model, objs=loaded, fields=["mapping_versions"], actor="system:beat"
    )

    assert updated == 3
    rows = history_of(model, created)
    assert len(rows) == 6
    assert {
        (r.history_type, r.history_actor, r.version) for r in rows if r.history_type == "~"
    } == {("~", "system:beat", 2)}
    stored = model.objects.filter(pk__in=[obj.pk for obj in created])
    assert {(obj.version, obj.mapping_versions["legal-entity"]) for obj in stored} == {(2, 4)}


def test_bulk_writes_with_the_acting_user_name_the_user(db, django_user_model, history_of):
    user = django_user_model.objects.create_user(username="bob", password="unused-in-tests")

    created = audited_bulk_create(
        model=Currency,
        objs=[Currency(code="CHF", name="Swiss franc"), Currency(code="JPY", name="Yen")],
        actor=actor_for_user(user),
    )

    assert {row.history_actor for row in history_of(Currency, created)} == {"user:bob"}


def test_a_bulk_update_that_changes_nothing_keeps_the_version(db, history_of):
    created = audited_bulk_create(
        model=Currency, objs=[Currency(code="CHF", name="Swiss franc")], actor="run:1"
    )

    audited_bulk_update(model=Currency, objs=created, fields=["name"], actor="run:2")

    assert Currency.objects.get(code="CHF").version == 1
    assert [row.history_type for row in history_of(Currency, created)] == ["+", "~"]


def test_the_request_user_wins_over_an_acting_block(db, request_user, history_of):
    with acting_as("run:9"):
        currency = CurrencyFactory(code="CHF")

    assert history_of(Currency, [currency])[0].history_actor == "user:alice"


def test_acting_blocks_nest_and_restore_the_outer_actor(db, history_of):
    with acting_as("run:1"):
        with acting_as("run:2"):
            inner = CurrencyFactory(code="CHF")
        outer = CurrencyFactory(code="JPY")
    after = CurrencyFactory(code="USD")

    assert [history_of(Currency, [c])[0].history_actor for c in (inner, outer, after)] == [
        "run:2",
        "run:1",
        "system:unknown",
    ]


@pytest.mark.parametrize("actor", ["", "alice", "user:", "run: 42", "x" * 101, None])
def test_an_actor_that_does_not_read_kind_colon_who_is_refused(actor):
    with pytest.raises(ValueError, match="actor must look like"), acting_as(actor):
        pass


def test_a_change_in_the_admin_is_attributed_to_the_signed_in_user(
    db, admin_client, admin_user, history_of
):
    currency = CurrencyFactory(code="CHF", name="Swiss franc")
    url = reverse("admin:sync_currency_change", args=[currency.pk])

    response = admin_client.post(
        url,
        {
            "code": "CHF",
            "name": "Franc suisse",
            "minor_units": "2",
            "status": "active",
            "correlation_id": "",
        },
    )

    assert response.status_code == 302, response.content[:2000]
    rows = history_of(Currency, [currency])
    assert rows[-1].history_actor == f"user:{admin_user.get_username()}"
    assert rows[-1].name == "Franc suisse"
    assert rows[-1].version == 2


def test_a_bulk_create_with_an_unknown_status_or_a_float_writes_nothing(db):
    good = TimeEntryFactory.build(
        worker=WorkerFactory(),
        project=(project := ProjectFactory()),
        task=TaskFactory(project=project),
    )
    unknown = TimeEntryFactory.build(
        worker=good.worker, project=project, task=good.task, status="archived"
    )
    floaty = TimeEntryFactory.build(worker=good.worker, project=project, task=good.task, hours=7.5)

    with pytest.raises(UnknownStatus):
        audited_bulk_create(model=TimeEntry, objs=[good, unknown], actor="run:1")
    with pytest.raises(TypeError, match="hours: float"):
        audited_bulk_create(model=TimeEntry, objs=[good, floaty], actor="run:1")

    assert not TimeEntry.objects.exists()
    assert not TimeEntry.history.exists()


def test_a_bulk_update_of_a_record_that_is_gone_raises_and_writes_nothing(db):
    entries = [TimeEntryFactory(), TimeEntryFactory()]
    TimeEntry.objects.filter(pk=entries[1].pk).delete()
    entries[0].correlation_id = "deal-9"

    with pytest.raises(TimeEntry.DoesNotExist):
        audited_bulk_update(model=TimeEntry, objs=entries, fields=["correlation_id"], actor="run:1")

    assert TimeEntry.objects.get(pk=entries[0].pk).correlation_id == ""


def test_deleting_a_record_leaves_a_history_row_naming_the_actor(db, history_of):
    currency = CurrencyFactory(code="CHF")

    with acting_as("user:carol"):
        Currency.objects.get(code="CHF").delete()

    rows = history_of(Currency, [currency])
    assert [(row.history_type, row.history_actor) for row in rows] == [
        ("+", "system:unknown"),
        ("-", "user:carol"),
    ]


def test_a_bulk_update_locks_its_rows_in_primary_key_order_whatever_the_input_order(db):
    entries = [TimeEntryFactory() for _ in range(3)]
    for entry in entries:
        entry.hours = "6.00"

    with CaptureQueriesContext(connection) as captured:
        audited_bulk_update(
            model=TimeEntry, objs=entries[::-1], fields=["hours"], actor="run:1", batch_size=1
        )

    # Overlapping batches that lock in one global order cannot deadlock each other.
    locking = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("SELECT")]
    assert len(locking) == 3
    # By the primary key, not the model's default ordering (`-work_date`, which has ties).
    assert all(re.search(r'ORDER BY (1|"sync_timeentry"\."id") ASC', sql) for sql in locking)
    assert [_the_one_pk_in(sql) for sql in locking] == sorted(e.pk for e in entries)


def _the_one_pk_in(sql: str) -> int:
    return int(re.search(r'"sync_timeentry"\."id" IN \((\d+)\)', sql).group(1))
