"""Lifecycle: statuses move only along each model's TRANSITIONS; an illegal move writes nothing."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction

from sync.audit import acting_as, audited_bulk_update
from sync.errors import IllegalTransition, UnknownStatus
from sync.lifecycle import record_transition
from sync.models import CANONICAL_MODELS, TimeEntry
from tests.factories import FACTORIES, TimeEntryFactory

MODELS = [pytest.param(model, id=model.__name__) for model in CANONICAL_MODELS]


def _statuses(model) -> list[str]:
    return [value for value, _ in model._meta.get_field(model.STATUS_FIELD).choices]


def _illegal_pair(model) -> tuple[str, str]:
    """A move the model forbids; for two-way lifecycles (task open/closed) an unknown status."""
    for from_status in _statuses(model):
        for to_status in _statuses(model):
            if not model.transition_allowed(from_status=from_status, to_status=to_status):
                return from_status, to_status
    return _statuses(model)[0], "not_a_status"


def _legal_pair(model) -> tuple[str, str]:
    for from_status, targets in model.TRANSITIONS.items():
        for to_status in sorted(targets):
            return from_status, to_status
    raise AssertionError(f"{model.__name__} allows no move at all")


def _stored(model, record):
    return model._base_manager.get(pk=record.pk)


@pytest.mark.parametrize("model", MODELS)
def test_every_model_lists_each_of_its_statuses_and_only_those_in_its_transitions(model):
    statuses = set(_statuses(model))
    assert set(model.TRANSITIONS) == statuses
    for targets in model.TRANSITIONS.values():
        assert isinstance(targets, frozenset)
        assert targets <= statuses
    assert model.check() == []


@pytest.mark.parametrize("model", MODELS)
def test_an_illegal_transition_on_save_raises_and_changes_nothing(db, model, history_of):
    from_status, to_status = _illegal_pair(model)
    record = FACTORIES[model](**{model.STATUS_FIELD: from_status})
    setattr(record, model.STATUS_FIELD, to_status)
    record.correlation_id = "must-not-be-written"

    with pytest.raises(IllegalTransition) as raised:
        record.save()

    message = str(raised.value)
    assert model.__name__ in message
    assert str(record.pk) in message
    assert repr(from_status) in message
    assert repr(to_status) in message
    stored = _stored(model, record)
    assert getattr(stored, model.STATUS_FIELD) == from_status
    assert stored.correlation_id == ""
    assert stored.version == 1
    assert len(history_of(model, [record])) == 1


@pytest.mark.parametrize("model", MODELS)
def test_record_transition_refuses_an_illegal_move_and_changes_nothing(db, model, history_of):
    from_status, to_status = _illegal_pair(model)
    record = FACTORIES[model](**{model.STATUS_FIELD: from_status})

    with pytest.raises(IllegalTransition):
        record_transition(record=record, to=to_status, actor="run:1")

    stored = _stored(model, record)
    assert getattr(stored, model.STATUS_FIELD) == from_status
    assert stored.version == 1
    assert len(history_of(model, [record])) == 1


@pytest.mark.parametrize("model", MODELS)
def test_record_transition_moves_along_an_allowed_pair_and_bumps_the_version(db, model, history_of):
    from_status, to_status = _legal_pair(model)
    record = FACTORIES[model](**{model.STATUS_FIELD: from_status})

    moved = record_transition(record=record, to=to_status, actor="run:1")

    assert getattr(moved, model.STATUS_FIELD) == to_status
    stored = _stored(model, record)
    assert getattr(stored, model.STATUS_FIELD) == to_status
    assert stored.version == 2
    rows = history_of(model, [record])
    assert [getattr(row, model.STATUS_FIELD) for row in rows] == [from_status, to_status]


def test_record_transition_to_the_current_status_writes_nothing(db, history_of):
    entry = TimeEntryFactory(status="approved")

    record_transition(record=entry, to="approved", actor="run:1")

    assert _stored(TimeEntry, entry).version == 1
    assert len(history_of(TimeEntry, [entry])) == 1


def test_record_transition_checks_the_stored_status_not_a_stale_copy(db):
    entry = TimeEntryFactory(status="submitted")
    stale = TimeEntry.objects.get(pk=entry.pk)
    record_transition(record=entry, to="approved", actor="run:1")
    record_transition(record=entry, to="posted", actor="run:1")

    # `stale` still says submitted, from where rejected is allowed; the row says posted.
    with pytest.raises(IllegalTransition, match="'posted' to 'rejected'"):
        record_transition(record=stale, to="rejected", actor="run:1")

    assert _stored(TimeEntry, entry).status == "posted"


def test_record_transition_attributes_the_history_row_to_the_given_actor(db, history_of):
    with acting_as("system:beat"):
        entry = TimeEntryFactory(status="submitted")
        record_transition(record=entry, to="approved", actor="user:carol")

    rows = history_of(TimeEntry, [entry])
    assert [(row.status, row.history_actor) for row in rows] == [
        ("submitted", "system:beat"),
        ("approved", "user:carol"),
    ]


def test_record_transition_needs_an_actor_and_refuses_a_malformed_one_before_writing(db):
    entry = TimeEntryFactory(status="submitted")

    with pytest.raises(TypeError):
        record_transition(record=entry, to="approved")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="actor must look like"):
        record_transition(record=entry, to="approved", actor="carol")

    assert _stored(TimeEntry, entry).status == "submitted"


def test_a_status_unknown_to_the_model_is_an_illegal_transition(db):
    entry = TimeEntryFactory(status="draft")

    with pytest.raises(IllegalTransition):
        record_transition(record=entry, to="archived", actor="run:1")


def test_a_new_record_may_start_in_any_status_but_not_an_unknown_one(db):
    assert TimeEntryFactory(status="posted").status == "posted"

    with pytest.raises(UnknownStatus):
        TimeEntryFactory(status="archived")


def test_a_save_that_changes_nothing_keeps_the_version(db):
    entry = TimeEntryFactory()
    entry.save()
    entry.hours = "7.50"  # same value, another spelling
    entry.save()

    assert _stored(TimeEntry, entry).version == 1


def test_each_content_change_bumps_the_version_by_one(db):
    entry = TimeEntryFactory()
    for hours in ("6.00", "5.00", "4.00"):
        entry = TimeEntry.objects.get(pk=entry.pk)
        entry.hours = hours
        entry.save()

    assert _stored(TimeEntry, entry).version == 4


def test_a_record_built_by_hand_over_an_existing_row_cannot_skip_the_lifecycle(db):
    entry = TimeEntryFactory(status="posted")
    by_hand = TimeEntry(
        pk=entry.pk,
        worker=entry.worker,
        project=entry.project,
        task=entry.task,
        work_date=entry.work_date,
        hours=entry.hours,
        bill_rate=entry.bill_rate,
        currency=entry.currency,
        status="draft",
    )

    with pytest.raises(IllegalTransition):
        by_hand.save()

    assert _stored(TimeEntry, entry).status == "posted"


def test_saving_other_fields_with_update_fields_neither_writes_nor_forgets_a_status_change(db):
    entry = TimeEntryFactory(status="approved")  # not frozen: its hours may still change
    entry.status = "draft"
    entry.hours = Decimal("3.00")

    entry.save(update_fields=["hours"])

    stored = _stored(TimeEntry, entry)
    assert (stored.status, stored.hours, stored.version) == ("approved", Decimal("3.00"), 2)
    # The in-memory "draft" is still checked against the stored "approved" on the next save.
    with pytest.raises(IllegalTransition):
        entry.save()


def test_a_bulk_update_with_one_illegal_transition_writes_nothing(db, history_of):
    entries = [TimeEntryFactory(status="submitted") for _ in range(3)]
    entries[0].status = "approved"
    entries[1].status = "approved"
    entries[2].status = "invoiced"  # submitted -> invoiced skips approval

    with pytest.raises(IllegalTransition):
        audited_bulk_update(model=TimeEntry, objs=entries, fields=["status"], actor="run:3")

    assert {e.status for e in TimeEntry.objects.all()} == {"submitted"}
    assert len(history_of(TimeEntry, entries)) == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_transitions_of_one_record_queue_on_the_row_lock():
    if connection.vendor != "postgresql":
        pytest.fail("Row locks need PostgreSQL: run the suite through `make test`.")
    entry = TimeEntryFactory(status="submitted")
    outcome: dict[str, object] = {}

    def reject_from_a_stale_copy() -> None:
        try:
            # `entry` still says submitted
            record_transition(record=entry, to="rejected", actor="run:1")
            outcome["result"] = "rejected"
        except IllegalTransition as exc:
            outcome["result"] = exc
        finally:
            connection.close()

    with transaction.atomic():
        held = TimeEntry.objects.select_for_update().get(pk=entry.pk)
        other = threading.Thread(target=reject_from_a_stale_copy)
        other.start()
        _wait_until_a_session_waits_for_a_lock()
        held.status = "approved"
        held.save()
        held.status = "posted"
        held.save()
    other.join(timeout=30)

    assert isinstance(outcome["result"], IllegalTransition)
    assert TimeEntry.objects.get(pk=entry.pk).status == "posted"


def _wait_until_a_session_waits_for_a_lock(timeout: float = 10.0) -> None:
    """Poll pg_stat_activity (from a separate connection) until another backend is blocked."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            # Inside a transaction the activity view is a snapshot unless cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the second transition never waited for the row lock")
