"""The outbox state machine: claim once, retry transient failures, park the rest."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from sync.pipeline.models import Delivery, ExceptionItem, TargetRecord
from sync.pipeline.outbox.claims import (
    deliveries_claim,
    deliveries_enqueue,
    deliveries_reclaim_stuck,
    deliveries_unclaim,
    delivery_retry,
)
from sync.pipeline.outbox.outcomes import (
    CIRCUIT_THRESHOLD,
    Outcome,
    deliveries_delivered_record,
    delivery_outcome_record,
)
from sync.pipeline.retry import MAX_ATTEMPTS

pytestmark = pytest.mark.django_db


def test_enqueueing_the_same_record_version_twice_keeps_one_delivery(make_delivery):
    first = make_delivery()
    again = Delivery(
        **{
            f.attname: getattr(first, f.attname)
            for f in Delivery._meta.concrete_fields
            if f.attname != "id"
        }
    )
    assert deliveries_enqueue(deliveries=[again]) == 0
    assert Delivery.objects.filter(idempotency_key=first.idempotency_key).count() == 1


def test_a_claimed_delivery_is_not_claimed_again_until_it_is_released(make_delivery):
    make_delivery()
    first = deliveries_claim(limit=10)
    assert len(first) == 1
    assert first[0].attempts == 1
    assert deliveries_claim(limit=10) == []


def test_a_delivery_due_later_is_not_claimed_now(make_delivery):
    make_delivery(next_attempt_at=timezone.now() + timedelta(minutes=5))
    assert deliveries_claim(limit=10) == []


def test_a_claim_takes_the_earliest_due_across_connections_up_to_its_limit(
    make_delivery, erp_connection
):
    """Read per connection, claimed in one due order: the limit holds in total, and a
    disabled connection's backlog, however old, is neither claimed nor in the way."""
    from sync.pipeline.models import Connection

    other = Connection.objects.create(
        name="second ERP", system="erp", dialect="netsuite", base_url="https://erp2.example"
    )
    off = Connection.objects.create(
        name="switched off",
        system="erp",
        dialect="netsuite",
        base_url="https://erp3.example",
        enabled=False,
    )
    now = timezone.now()
    for minutes in range(5):
        make_delivery(connection=off, next_attempt_at=now - timedelta(hours=1, minutes=minutes))
    a1 = make_delivery(next_attempt_at=now - timedelta(minutes=3))
    b1 = make_delivery(connection=other, next_attempt_at=now - timedelta(minutes=2))
    a2 = make_delivery(next_attempt_at=now - timedelta(minutes=1))
    make_delivery(connection=other, next_attempt_at=now)
    claimed = deliveries_claim(limit=3, now=now)
    assert [d.id for d in claimed] == [a1.id, b1.id, a2.id]
    assert Delivery.objects.filter(state="in_flight").count() == 3
    assert not Delivery.objects.filter(connection=off).exclude(state="pending").exists()
    assert [d.connection_id for d in deliveries_claim(limit=10, now=now)] == [other.id]


def test_success_records_the_target_id(make_delivery):
    make_delivery()
    (claimed,) = deliveries_claim(limit=1)
    state = delivery_outcome_record(delivery=claimed, outcome=Outcome(ok=True, target_id="9001"))
    claimed.refresh_from_db()
    assert state == claimed.state == Delivery.State.DELIVERED
    assert claimed.target_id == "9001"


def test_a_transient_failure_is_retried_later_with_retry_after_honoured(make_delivery):
    make_delivery()
    now = timezone.now()
    (claimed,) = deliveries_claim(limit=1, now=now)
    outcome = Outcome(ok=False, kind="transient", status=429, message="slow down", retry_after=60)
    delivery_outcome_record(delivery=claimed, outcome=outcome, now=now, rng=random.Random(3))
    claimed.refresh_from_db()
    assert claimed.state == Delivery.State.PENDING
    assert claimed.next_attempt_at >= now + timedelta(seconds=60)
    assert not ExceptionItem.objects.exists()


def test_after_the_last_attempt_a_transient_failure_becomes_an_exception_item(make_delivery):
    delivery = make_delivery(attempts=MAX_ATTEMPTS - 1)
    (claimed,) = deliveries_claim(limit=1)
    delivery_outcome_record(
        delivery=claimed, outcome=Outcome(ok=False, kind="transient", status=503, message="down")
    )
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.FAILED
    item = ExceptionItem.objects.get(delivery=delivery)
    assert item.queue == "integration_ops"
    assert item.money_at_risk is not None
    assert str(item.money_at_risk) == "900.00"
    assert item.currency == "GBP"


def test_a_permanent_failure_goes_straight_to_the_business_queue_with_the_vendor_code(
    make_delivery,
):
    delivery = make_delivery()
    (claimed,) = deliveries_claim(limit=1)
    delivery_outcome_record(
        delivery=claimed,
        outcome=Outcome(
            ok=False,
            kind="permanent",
            status=400,
            vendor_code="PERIOD_CLOSED",
            message="The accounting period is closed.",
        ),
    )
    item = ExceptionItem.objects.get(delivery=delivery)
    assert item.queue == "time_and_expense"
    assert item.code == "PERIOD_CLOSED"
    assert "closed" in item.message


def test_a_late_outcome_does_not_overwrite_a_delivery_that_was_reclaimed_and_resent(
    make_delivery,
):
    past = timezone.now() - timedelta(hours=1)
    make_delivery(next_attempt_at=past)
    (stale,) = deliveries_claim(limit=1, now=past)
    assert deliveries_reclaim_stuck() == 1
    (fresh,) = deliveries_claim(limit=1)
    delivery_outcome_record(delivery=fresh, outcome=Outcome(ok=True, target_id="1"))
    delivery_outcome_record(
        delivery=stale, outcome=Outcome(ok=False, kind="permanent", message="late")
    )
    fresh.refresh_from_db()
    assert fresh.state == Delivery.State.DELIVERED
    assert not ExceptionItem.objects.exists()


def test_repeated_transient_failures_open_the_connection_circuit(make_delivery, erp_connection):
    for _ in range(CIRCUIT_THRESHOLD):
        make_delivery()
    for claimed in deliveries_claim(limit=CIRCUIT_THRESHOLD):
        delivery_outcome_record(
            delivery=claimed, outcome=Outcome(ok=False, kind="transient", message="503")
        )
    erp_connection.refresh_from_db()
    assert erp_connection.circuit_open_until is not None
    make_delivery()
    assert deliveries_claim(limit=10) == []  # nothing for an open circuit


def test_a_person_can_retry_a_failed_delivery_with_a_fresh_attempt_budget(make_delivery):
    delivery = make_delivery()
    (claimed,) = deliveries_claim(limit=1)
    delivery_outcome_record(delivery=claimed, outcome=Outcome(ok=False, kind="permanent"))
    retried = delivery_retry(delivery=delivery)
    assert retried.state == Delivery.State.PENDING
    assert retried.attempts == 0
    with pytest.raises(ValueError, match="not failed"):
        delivery_retry(delivery=retried)


def test_a_late_success_after_a_reclaim_still_marks_the_delivery_delivered(make_delivery):
    past = timezone.now() - timedelta(hours=1)
    delivery = make_delivery(next_attempt_at=past)
    (stale,) = deliveries_claim(limit=1, now=past)
    deliveries_reclaim_stuck()
    state = delivery_outcome_record(delivery=stale, outcome=Outcome(ok=True, target_id="77"))
    delivery.refresh_from_db()
    assert state == delivery.state == Delivery.State.DELIVERED
    assert delivery.target_id == "77"
    assert deliveries_claim(limit=10) == []  # nothing left to send twice


def test_a_delivery_whose_worker_keeps_dying_fails_once_its_budget_is_spent(make_delivery):
    past = timezone.now() - timedelta(hours=1)
    delivery = make_delivery(next_attempt_at=past, attempts=MAX_ATTEMPTS - 1)
    deliveries_claim(limit=1, now=past)  # the last attempt, and its worker dies
    assert deliveries_reclaim_stuck() == 0
    delivery.refresh_from_db()
    assert delivery.state == Delivery.State.FAILED
    item = ExceptionItem.objects.get(delivery=delivery)
    assert item.queue == "integration_ops"
    assert "lost mid-send" in item.message


def test_bad_credentials_pause_the_connection_with_one_item_and_keep_every_delivery(
    make_delivery, erp_connection
):
    for _ in range(5):
        make_delivery()
    for claimed in deliveries_claim(limit=5):
        delivery_outcome_record(
            delivery=claimed,
            outcome=Outcome(
                ok=False, kind="configuration", status=401, message="invalid login attempt"
            ),
        )
    erp_connection.refresh_from_db()
    assert erp_connection.circuit_open_until is not None
    assert set(Delivery.objects.values_list("state", "attempts")) == {("pending", 0)}
    item = ExceptionItem.objects.get()
    assert (item.record_key, item.occurrences) == ("connection:erp", 5)
    assert item.category == "configuration"


def test_a_float_amount_in_a_payload_is_not_guessed_into_money_at_risk(make_delivery):
    delivery = make_delivery(payload={"amount": 0.1, "currency": "GBP"})
    (claimed,) = deliveries_claim(limit=1)
    delivery_outcome_record(delivery=claimed, outcome=Outcome(ok=False, kind="permanent"))
    assert ExceptionItem.objects.get(delivery=delivery).money_at_risk is None


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_never_claim_the_same_delivery(make_delivery):
    if connection.vendor != "postgresql":
        pytest.fail("Needs PostgreSQL row locks: run through `make test`.")
    for _ in range(200):
        make_delivery()
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer():
        try:
            while batch := deliveries_claim(limit=7):
                with lock:
                    claimed.extend(d.id for d in batch)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 200
    assert len(set(claimed)) == 200


def test_claimed_deliveries_given_back_unsent_count_no_attempt(make_delivery):
    make_delivery()
    make_delivery()
    claimed = deliveries_claim(limit=10)
    assert deliveries_unclaim(deliveries=claimed) == 2
    assert set(Delivery.objects.values_list("state", "attempts", "claim_token")) == {
        ("pending", 0, None)
    }
    assert len(deliveries_claim(limit=10)) == 2


def test_a_give_back_after_a_reclaim_leaves_the_new_claim_alone(make_delivery):
    make_delivery()
    (stale,) = deliveries_claim(limit=1)
    later = timezone.now() + timedelta(hours=1)
    deliveries_reclaim_stuck(now=later)  # its worker looked dead: another claims it
    (fresh,) = deliveries_claim(limit=1, now=later)
    assert deliveries_unclaim(deliveries=[stale]) == 0
    fresh.refresh_from_db()
    assert (fresh.state, fresh.claim_token) == ("in_flight", fresh.claim_token)


def test_successes_recorded_together_mark_each_delivered_with_its_target_id(make_delivery):
    first, second, gone = make_delivery(), make_delivery(), make_delivery()
    claimed = {d.id: d for d in deliveries_claim(limit=10)}
    delivery_outcome_record(
        delivery=claimed[gone.id], outcome=Outcome(ok=False, kind="permanent", message="refused")
    )
    states = deliveries_delivered_record(
        results=[
            (claimed[first.id], Outcome(ok=True, target_id="71", status=204)),
            (claimed[second.id], Outcome(ok=True, target_id="72", status=204)),
            (claimed[gone.id], Outcome(ok=True, target_id="73", status=204)),
        ]
    )
    assert states == ["delivered", "delivered", "failed"]
    assert dict(Delivery.objects.values_list("id", "target_id")) == {
        first.id: "71",
        second.id: "72",
        gone.id: "",
    }


def test_a_delivered_record_is_remembered_as_held_by_the_target_under_our_key(make_delivery):
    first, second, gone = make_delivery(), make_delivery(), make_delivery()
    claimed = {d.id: d for d in deliveries_claim(limit=10)}
    delivery_outcome_record(delivery=claimed[first.id], outcome=Outcome(ok=True, target_id="81"))
    delivery_outcome_record(
        delivery=claimed[gone.id], outcome=Outcome(ok=False, kind="permanent", message="refused")
    )
    deliveries_delivered_record(
        results=[
            (claimed[second.id], Outcome(ok=True, target_id="82", status=204)),
            (claimed[gone.id], Outcome(ok=True, target_id="83", status=204)),
        ]
    )
    known = {
        (t.record_type, t.external_id): (t.target_id, t.source) for t in TargetRecord.objects.all()
    }
    assert known == {
        ("timeBill", first.external_id): ("81", "delivered"),
        ("timeBill", second.external_id): ("82", "delivered"),
    }


def test_the_sweep_counts_due_deliveries_of_sending_connections_only(make_delivery):
    """A disabled connection's backlog must not keep the sweep enqueueing send tasks."""
    from sync.pipeline.models import Connection
    from sync.tasks import _deliveries_due_count

    off = Connection.objects.create(
        name="switched off",
        system="erp",
        dialect="netsuite",
        base_url="https://erp3.example",
        enabled=False,
    )
    for _ in range(3):
        make_delivery(connection=off)
    assert _deliveries_due_count(cap=100) == 0
    make_delivery()
    assert _deliveries_due_count(cap=100) == 1
