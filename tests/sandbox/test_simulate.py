"""`sandbox simulate`: deterministic ongoing activity with the events that go with it."""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from sandbox.commands.simulate import activity_simulate, duration_parse, rate_parse
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


def test_a_payment_settles_the_erp_invoice_and_the_billing_invoice(tmp_path):
    seed_firm(tmp_path)
    open_erp = SandboxRecord.objects.filter(system="netsuite", object_type="invoice", status="A")
    before = open_erp.count()
    done = Counter()
    seed = 0
    while not done["pay"] and seed < 20:  # find a seed whose first actions include a payment
        done = activity_simulate(seed=seed, count=10)
        seed += 1
    assert done["pay"] >= 1
    assert open_erp.count() == before - done["pay"]
    assert SandboxEvent.objects.filter(system="stripe", action="invoice.paid").exists()


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
