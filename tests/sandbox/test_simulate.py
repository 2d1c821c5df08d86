"""`sandbox simulate`: deterministic ongoing activity with the events that go with it."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from sandbox.commands.simulate import act_close, activity_simulate, duration_parse, rate_parse
from sandbox.models import SandboxEvent, SandboxRecord

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


def seed_firm(tmp_path) -> None:
    call_command(
        "sandbox",
        "seed",
        "--scale",
        "300",
        "--seed",
        "5",
        "--reset",
        "--manifest",
        str(tmp_path / "manifest.json"),
    )


def state() -> Counter:
    return Counter(SandboxRecord.objects.values_list("system", "object_type", "status"))


def test_the_same_seed_on_the_same_firm_makes_the_same_changes(tmp_path):
    seed_firm(tmp_path)
    first = activity_simulate(seed=3, count=60)
    after_first = state()
    seed_firm(tmp_path)
    second = activity_simulate(seed=3, count=60)
    assert first == second
    assert state() == after_first
    assert sum(first.values()) == 60


def test_approvals_and_bookings_show_in_the_psa_change_feed(tmp_path):
    seed_firm(tmp_path)
    before = SandboxEvent.objects.filter(system="kantata").count()
    done = activity_simulate(seed=11, count=40)
    assert done["approve"] + done["book"] > 0
    approved = SandboxEvent.objects.filter(system="kantata", action="approved").count()
    assert approved == done["approve"]
    assert SandboxEvent.objects.filter(system="kantata").count() > before


def test_a_simulated_payment_is_entered_in_one_system_only(tmp_path):
    seed_firm(tmp_path)
    payments = SandboxRecord.objects.filter(system="netsuite", object_type="customerPayment")
    erp_before = payments.count()
    paid_in_billing = SandboxEvent.objects.filter(system="stripe", action="invoice.paid")
    billing_before = paid_in_billing.count()
    done = Counter()
    seed = 0
    while done["pay"] < 2 and seed < 40:  # seeds whose first actions include payments
        done += activity_simulate(seed=seed, count=10)
        seed += 1
    erp_paid = payments.count() - erp_before
    billing_paid = paid_in_billing.count() - billing_before

    assert done["pay"] >= 2
    # Each payment is in the ERP or in billing, never both: Ledgerbridge carries it across.
    assert erp_paid + billing_paid == done["pay"]
    erp_numbers = {p.data["tranId"].removeprefix("PYMT-") for p in payments}
    billing_numbers = set(
        SandboxRecord.objects.filter(system="stripe", object_type="invoice", status="paid")
        .exclude(data__paid_out_of_band=True)
        .values_list("data__number", flat=True)
    )
    assert not erp_numbers & billing_numbers


def test_a_won_deal_is_entered_in_the_crm_only(tmp_path):
    seed_firm(tmp_path)
    before = state()
    before_contracts = list(
        SandboxRecord.objects.filter(system="salesforce", object_type="Contract")
    )
    events_before = Counter(SandboxEvent.objects.values_list("system", flat=True))

    assert act_close(random.Random(1), timezone.now())

    after = state()
    changed = {key for key in set(after) | set(before) if after[key] != before[key]}
    assert after[("salesforce", "Opportunity", "Closed Won")] == (
        before[("salesforce", "Opportunity", "Closed Won")] + 1
    )
    (sow,) = SandboxRecord.objects.filter(system="salesforce", object_type="Contract").exclude(
        id__in=[r.id for r in before_contracts]
    )
    assert sow.status == "Activated"
    # No customer, project or billing record appears anywhere: onboarding is Ledgerbridge's.
    assert {system for system, _, _ in changed} == {"salesforce"}
    events = Counter(SandboxEvent.objects.values_list("system", flat=True))
    assert {s for s in events if events[s] != events_before[s]} <= {"salesforce"}


@pytest.mark.parametrize("raw", ["20", "fast", "0/s", "9999/s"])
def test_a_bad_rate_is_refused_with_the_expected_form(raw):
    with pytest.raises(CommandError, match="20/s"):
        rate_parse(raw)


@pytest.mark.parametrize(("raw", "seconds"), [("60s", 60), ("5m", 300), ("1h", 3600), ("2", 2)])
def test_durations_read_as_a_person_writes_them(raw, seconds):
    assert duration_parse(raw) == seconds


def test_simulating_an_empty_sandbox_says_to_seed_it_first():
    with pytest.raises(CommandError, match="sandbox seed"):
        call_command("sandbox", "simulate", "--count", "5")
