"""CanonicalModel writes: optimistic locking on version, and frozen records that never change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import transaction

from sync.audit import audited_bulk_update
from sync.errors import ImmutableRecord, StaleRecord
from sync.lifecycle import record_transition
from sync.models import CANONICAL_MODELS, Expense, Invoice, Payment, TimeEntry
from tests.factories import (
    CurrencyFactory,
    ExpenseFactory,
    InvoiceFactory,
    PaymentFactory,
    TimeEntryFactory,
)


def _stored(model, record):
    return model._base_manager.get(pk=record.pk)


# --- stale saves ----------------------------------------------------------------------------


def test_a_stale_copy_cannot_move_a_posted_entry_back_to_approved(db, history_of):
    entry = TimeEntryFactory(status="approved")
    stale = TimeEntry.objects.get(pk=entry.pk)
    entry.status = "posted"
    entry.save()

    stale.hours = Decimal("6.00")  # approved -> approved: the stale copy's own check passes
    with pytest.raises(StaleRecord, match="version 1") as raised:
        stale.save()

    assert (raised.value.loaded_version, raised.value.stored_version) == (1, 2)
    stored = _stored(TimeEntry, entry)
    assert (stored.status, stored.hours, stored.version) == ("posted", Decimal("7.50"), 2)
    assert len(history_of(TimeEntry, [entry])) == 2


def test_two_copies_of_one_version_cannot_both_write_the_next_version(db):
    first = TimeEntryFactory()
    second = TimeEntry.objects.get(pk=first.pk)
    first.hours = Decimal("6.00")
    first.save()

    second.hours = Decimal("5.00")
    with pytest.raises(StaleRecord):
        second.save()

    stored = _stored(TimeEntry, first)
    assert (stored.hours, stored.version) == (Decimal("6.00"), 2)


def test_a_stale_copy_that_changes_nothing_still_cannot_overwrite_the_row(db):
    entry = TimeEntryFactory()
    stale = TimeEntry.objects.get(pk=entry.pk)
    entry.hours = Decimal("6.00")
    entry.save()

    with pytest.raises(StaleRecord):
        stale.save()  # would write its old hours back under the stored version

    assert _stored(TimeEntry, entry).hours == Decimal("6.00")


def test_a_stale_save_leaves_the_callers_transaction_usable(db):
    entry = TimeEntryFactory()
    stale = TimeEntry.objects.get(pk=entry.pk)
    entry.hours = Decimal("6.00")
    entry.save()

    with transaction.atomic():
        with pytest.raises(StaleRecord):
            stale.save()
        # The refused UPDATE was rolled back to a savepoint: the caller can go on querying.
        assert TimeEntry.objects.filter(pk=entry.pk).exists()


def test_a_refreshed_copy_saves_after_a_stale_record_error(db):
    entry = TimeEntryFactory()
    stale = TimeEntry.objects.get(pk=entry.pk)
    entry.hours = Decimal("6.00")
    entry.save()
    stale.hours = Decimal("5.00")
    with pytest.raises(StaleRecord):
        stale.save()

    stale.refresh_from_db()
    stale.hours = Decimal("5.00")
    stale.save()

    assert _stored(TimeEntry, entry).version == 3


def test_a_stale_copy_in_a_bulk_update_raises_and_writes_nothing(db, history_of):
    entries = [TimeEntryFactory(status="approved") for _ in range(2)]
    stale = list(TimeEntry.objects.filter(pk__in=[e.pk for e in entries]).order_by("pk"))
    entries[1].status = "posted"
    entries[1].save()
    for copy in stale:
        copy.hours = Decimal("4.00")

    with pytest.raises(StaleRecord):
        audited_bulk_update(model=TimeEntry, objs=stale, fields=["hours"], actor="run:1")

    assert {(e.hours, e.version) for e in TimeEntry.objects.filter(pk=entries[0].pk)} == {
        (Decimal("7.50"), 1)
    }
    assert _stored(TimeEntry, entries[1]).hours == Decimal("7.50")
    assert len(history_of(TimeEntry, entries)) == 3


def test_record_transition_still_moves_a_record_another_copy_has_changed(db):
    entry = TimeEntryFactory(status="approved")
    stale = TimeEntry.objects.get(pk=entry.pk)
    entry.hours = Decimal("6.00")
    entry.save()

    moved = record_transition(record=stale, to="posted", actor="run:5")

    assert (moved.status, moved.hours, moved.version) == ("posted", Decimal("6.00"), 3)


# --- correlation id is not content ----------------------------------------------------------


def test_a_change_of_correlation_id_alone_keeps_the_version(db, history_of):
    entry = TimeEntryFactory()
    entry.correlation_id = "trace-42"
    entry.save()

    stored = _stored(TimeEntry, entry)
    assert (stored.correlation_id, stored.version) == ("trace-42", 1)


def test_a_bulk_update_of_correlation_id_alone_keeps_the_version(db):
    entries = [TimeEntryFactory(), TimeEntryFactory()]
    for entry in entries:
        entry.correlation_id = "trace-43"

    audited_bulk_update(model=TimeEntry, objs=entries, fields=["correlation_id"], actor="run:1")

    assert {(e.correlation_id, e.version) for e in TimeEntry.objects.all()} == {("trace-43", 1)}


def test_a_change_of_mapping_versions_is_content_and_bumps_the_version(db):
    entry = TimeEntryFactory()
    entry.mapping_versions = {"legal-entity": 2}
    entry.save()

    assert _stored(TimeEntry, entry).version == 2


# --- frozen records -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "status", "field", "value"),
    [
        pytest.param(TimeEntryFactory, "posted", "hours", Decimal("1.00"), id="posted-time"),
        pytest.param(TimeEntryFactory, "invoiced", "billable", False, id="invoiced-time"),
        pytest.param(TimeEntryFactory, "reversed", "hours", Decimal("1.00"), id="reversed-time"),
        pytest.param(ExpenseFactory, "posted", "amount", Decimal("1.00"), id="posted-expense"),
        pytest.param(InvoiceFactory, "open", "total", Decimal("1.00"), id="open-invoice"),
        pytest.param(InvoiceFactory, "paid", "total", Decimal("1.00"), id="paid-invoice"),
        pytest.param(InvoiceFactory, "void", "number", "INV-9", id="void-invoice"),
        pytest.param(PaymentFactory, "applied", "amount", Decimal("1.00"), id="applied-payment"),
    ],
)
def test_the_content_of_a_frozen_record_cannot_be_edited(
    db, factory, status, field, value, history_of
):
    record = factory(status=status)
    model = type(record)
    before = getattr(record, field)
    setattr(record, field, value)

    with pytest.raises(ImmutableRecord, match=field):
        record.save()

    stored = _stored(model, record)
    assert (getattr(stored, field), stored.version) == (before, 1)
    assert len(history_of(model, [record])) == 1


def test_a_frozen_record_still_moves_along_its_lifecycle(db):
    entry = TimeEntryFactory(status="posted")

    entry.status = "reversed"
    entry.save()

    assert _stored(TimeEntry, entry).status == "reversed"


def test_a_frozen_record_cannot_change_content_on_its_way_to_another_status(db):
    entry = TimeEntryFactory(status="posted")
    entry.status = "reversed"
    entry.hours = Decimal("1.00")

    with pytest.raises(ImmutableRecord):
        entry.save()

    assert _stored(TimeEntry, entry).status == "posted"


def test_the_correlation_id_of_a_frozen_record_may_still_be_set(db):
    entry = TimeEntryFactory(status="posted")
    entry.correlation_id = "trace-44"

    entry.save()

    assert _stored(TimeEntry, entry).correlation_id == "trace-44"


def test_a_record_becoming_frozen_may_change_content_in_the_same_save(db):
    invoice = InvoiceFactory(status="draft")
    invoice.status = "open"
    invoice.number = "INV-0001"  # issuing gives the number

    invoice.save()

    assert _stored(Invoice, invoice).number == "INV-0001"


def test_a_bulk_update_of_a_frozen_record_raises_and_writes_nothing(db, history_of):
    draft = ExpenseFactory(status="draft")
    posted = ExpenseFactory(status="posted")
    for expense in (draft, posted):
        expense.amount = Decimal("1.00")

    with pytest.raises(ImmutableRecord):
        audited_bulk_update(model=Expense, objs=[draft, posted], fields=["amount"], actor="run:1")

    assert {e.amount for e in Expense.objects.all()} == {Decimal("42.10")}
    assert len(history_of(Expense, [draft, posted])) == 2


def test_a_bulk_status_move_of_a_frozen_record_is_allowed(db):
    payment = PaymentFactory(status="applied")
    payment.status = "reversed"

    audited_bulk_update(model=Payment, objs=[payment], fields=["status"], actor="run:1")

    assert _stored(Payment, payment).status == "reversed"


def test_frozen_statuses_are_statuses_of_their_model():
    for model in CANONICAL_MODELS:
        choices = {value for value, _ in model._meta.get_field(model.STATUS_FIELD).choices}
        assert choices >= model.FROZEN_STATUSES, model.__name__


def test_models_without_frozen_statuses_stay_editable(db):
    currency = CurrencyFactory(code="CHF", name="Swiss franc")
    currency.name = "Franc suisse"

    currency.save()

    assert _stored(type(currency), currency).version == 2
