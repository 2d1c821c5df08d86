"""`sandbox simulate`: ongoing, realistic activity in a seeded firm, at a steady rate.

Each tick picks one action (weighted, from a seeded random stream) and applies it through the
sandbox's own storage and services, so the change feeds, events and signed webhooks a real
system would emit go out with it:

- approve   a manager approves submitted Kantata time (change event + approval webhook)
- book      a consultant books new time in Kantata (unapproved)
- staff     an assignment moves to another named consultant
- close     a CRM opportunity is closed-won and its SOW activated, in the CRM only (the
            customer and project are Ledgerbridge's to make)
- complete  a Kantata milestone is completed
- pay       a customer pays an open invoice in ONE system, picked at random: a NetSuite
            customer payment, or billing collecting a Stripe invoice by card (`invoice.paid`
            event and webhooks); carrying it to the other system is Ledgerbridge's job

Deterministic for a seed and a starting state: the same seed on the same seeded firm makes the
same changes in the same order. `--count` runs a fixed number of actions (tests); otherwise it
runs `--rate` actions per second for `--for` seconds.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from collections import Counter
from collections.abc import Callable

from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from sandbox import storage
from sandbox.commands import Subcommand
from sandbox.kantata.webhooks import time_entries_approve
from sandbox.models import SandboxRecord
from sandbox.router import SANDBOX_DB
from sandbox.salesforce.schema import OPPORTUNITY, sf_id

ACTIONS: tuple[tuple[str, int], ...] = (
    ("approve", 40),
    ("book", 30),
    ("staff", 10),
    ("close", 5),
    ("complete", 5),
    ("pay", 10),
)
MAX_RATE = 500.0
PAYING_CARD = "pm_card_visa"  # Stripe's test card that always succeeds
MAX_SECONDS = 24 * 3600


def _pick(rng: random.Random, queryset) -> SandboxRecord | None:
    """One record from `queryset`, chosen by the seeded stream (ordered by id: deterministic)."""
    count = queryset.count()
    if count == 0:
        return None
    return queryset.order_by("id")[rng.randrange(count)]


def _records(system: str, object_type: str):
    return storage.record_queryset(system=system, object_type=object_type)


def act_approve(rng: random.Random, now: dt.datetime) -> bool:
    entry = _pick(rng, _records("kantata", "time_entries").filter(status="unapproved"))
    return bool(entry) and time_entries_approve(ids=[entry.pk], now=now) == 1


def act_book(rng: random.Random, now: dt.datetime) -> bool:
    model = _pick(rng, _records("kantata", "time_entries"))
    if model is None:
        return False
    data = {
        **model.data,
        "date_performed": (now.date() - dt.timedelta(days=rng.randrange(0, 5))).isoformat(),
        "time_in_minutes": rng.choice((30, 60, 90, 120, 240, 360, 420, 480)),
        "approval_status": "submitted",
        "notes": "booked by the simulator",
    }
    storage.record_create(
        system="kantata",
        object_type="time_entries",
        data=data,
        parent_id=model.parent_id,
        status="unapproved",
        now=now,
    )
    return True


def act_staff(rng: random.Random, now: dt.datetime) -> bool:
    assignment = _pick(rng, _records("kantata", "assignments"))
    named = _records("kantata", "users").filter(data__is_placeholder=False)
    user = _pick(rng, named)
    if assignment is None or user is None or assignment.data.get("assignee_id") == str(user.pk):
        return False
    storage.record_update(record=assignment, changes={"assignee_id": str(user.pk)}, now=now)
    return True


def act_close(rng: random.Random, now: dt.datetime) -> bool:
    open_deals = _records("salesforce", "Opportunity").exclude(
        status__in=["Closed Won", "Closed Lost"]
    )
    deal = _pick(rng, open_deals)
    if deal is None:
        return False
    with transaction.atomic(using=SANDBOX_DB):
        storage.record_update(
            record=deal,
            status="Closed Won",
            now=now,
            changes={
                "StageName": "Closed Won",
                "IsClosed": True,
                "IsWon": True,
                "Probability": 100,
                "CloseDate": now.date().isoformat(),
            },
        )
        # The salesperson activates the deal's statement of work, in the CRM too: the
        # customer and the project are Ledgerbridge's to make from them.
        start = now.date() + dt.timedelta(days=14)
        storage.record_create(
            system="salesforce",
            object_type="Contract",
            parent_id=deal.parent_id,
            status="Activated",
            now=now,
            data={
                "AccountId": deal.data.get("AccountId"),
                "ContractNumber": f"S{deal.pk:07d}",
                "Status": "Activated",
                "StartDate": start.isoformat(),
                "EndDate": (start + dt.timedelta(days=180)).isoformat(),
                "ContractTerm": 6,
                "Opportunity__c": sf_id(OPPORTUNITY, deal.pk),
                "Billing_Model__c": deal.data.get("Billing_Model__c"),
                "Contract_Value__c": deal.data.get("Amount"),
                "CurrencyIsoCode": deal.data.get("CurrencyIsoCode"),
                # 9 digits: never the number of a seeded SOW (6 digits), so never its project.
                "SOW_Number__c": f"SOW-{deal.pk:09d}",
            },
        )
    return True


def act_complete(rng: random.Random, now: dt.datetime) -> bool:
    milestones = (
        _records("kantata", "stories")
        .filter(data__story_type="milestone")
        .exclude(status="completed")
    )
    milestone = _pick(rng, milestones)
    if milestone is None:
        return False
    storage.record_update(
        record=milestone, status="completed", now=now, changes={"state": "completed"}
    )
    return True


def act_pay(rng: random.Random, now: dt.datetime) -> bool:
    """A customer pays one open invoice, entered where the cash arrives: the ERP (a NetSuite
    customer payment applying it) or billing (Stripe collects it), picked at random. Never
    both: carrying the payment to the other system is Ledgerbridge's job (flow 7)."""
    if rng.choice(("erp", "billing")) == "billing":
        return _billing_collect(rng)
    invoice = _pick(rng, _records("netsuite", "invoice").filter(status="A"))
    if invoice is None:
        return False
    amount = invoice.data.get("amountRemaining", invoice.data.get("total"))
    number = invoice.data.get("tranId")
    with transaction.atomic(using=SANDBOX_DB):
        storage.record_create(
            system="netsuite",
            object_type="customerPayment",
            external_id=f"PYMT-{invoice.external_id}-SIM",
            parent_id=invoice.parent_id,
            now=now,
            data={
                "tranId": f"PYMT-{number}",
                "customer": invoice.data["entity"],
                "tranDate": now.date().isoformat(),
                "payment": amount,
                "subsidiary": invoice.data.get("subsidiary"),
                "currency": invoice.data.get("currency"),
                "memo": f"Payment of {number}",
                "apply": [{"doc": str(invoice.pk), "apply": True, "amount": amount}],
            },
        )
        storage.record_update(
            record=invoice, status="B", now=now, changes={"status": "B", "amountRemaining": 0}
        )
    return True


def _billing_collect(rng: random.Random) -> bool:
    """Billing collects an open invoice by card (Stripe's `invoice.paid` event and webhooks)."""
    from sandbox.stripe import services as stripe
    from sandbox.stripe.objects import stripe_id

    billed = _pick(rng, _records("stripe", "invoice").filter(status="open"))
    if billed is None:
        return False
    stripe.invoice_pay(
        invoice_id=stripe_id("invoice", billed.pk),
        paid_out_of_band=False,
        payment_method=PAYING_CARD,
        ref=stripe.RequestRef(),
    )
    return True


HANDLERS: dict[str, Callable[[random.Random, dt.datetime], bool]] = {
    "approve": act_approve,
    "book": act_book,
    "staff": act_staff,
    "close": act_close,
    "complete": act_complete,
    "pay": act_pay,
}


def activity_simulate(
    *,
    seed: int,
    count: int | None = None,
    rate: float = 20.0,
    seconds: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[Counter], None] | None = None,
) -> Counter:
    """Apply actions until `count` are done (or `seconds` pass at `rate` per second).

    Returns how many of each action took effect ("skipped" when none applied, e.g. nothing
    left to approve). Bounded: at most `count`, or `rate * seconds`, actions.
    """
    rng = random.Random(seed)
    names = [name for name, _ in ACTIONS]
    weights = [weight for _, weight in ACTIONS]
    done: Counter = Counter()
    total = count if count is not None else int(rate * seconds)
    interval = 1.0 / rate
    started = clock()
    for n in range(total):
        if count is None:
            wait = started + n * interval - clock()
            if wait > 0:
                sleep(wait)
        action = rng.choices(names, weights)[0]
        done[action if HANDLERS[action](rng, timezone.now()) else "skipped"] += 1
        if progress and (n + 1) % max(1, int(rate) * 10) == 0:
            progress(done)
    return done


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*s\s*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def rate_parse(raw: str) -> float:
    match = _RATE.match(raw)
    if not match or not 0 < float(match.group(1)) <= MAX_RATE:
        raise CommandError(f"--rate must look like 20/s (at most {MAX_RATE:.0f}/s), got {raw!r}")
    return float(match.group(1))


def duration_parse(raw: str) -> float:
    match = _DURATION.match(raw)
    if not match:
        raise CommandError(f"--for must look like 60s, 5m or 1h, got {raw!r}")
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]
    if not 0 < seconds <= MAX_SECONDS:
        raise CommandError(f"--for must be between 1 s and 24 h, got {raw!r}")
    return seconds


def _add_arguments(parser):
    parser.add_argument("--rate", default="20/s", help="actions per second, e.g. 20/s")
    parser.add_argument("--for", dest="duration", default="60s", help="how long: 60s, 5m, 1h")
    parser.add_argument(
        "--count", type=int, default=None, help="run exactly this many actions, as fast as possible"
    )
    parser.add_argument("--seed", type=int, default=42)


def _run(*, stdout, stderr, rate: str, duration: str, count: int | None, seed: int, **options):
    if count is not None and count < 1:
        raise CommandError("--count must be at least 1")
    per_second, seconds = rate_parse(rate), duration_parse(duration)
    if not storage.record_queryset(system="kantata", object_type="time_entries").exists():
        raise CommandError("The sandbox is empty: run `sandbox seed` first.")
    done = activity_simulate(
        seed=seed,
        count=count,
        rate=per_second,
        seconds=seconds,
        progress=lambda c: stderr.write(f"simulate: {sum(c.values())} actions {dict(c)}"),
    )
    stdout.write(" ".join(f"{name}={done[name]}" for name in [*HANDLERS, "skipped"]))


SUBCOMMAND = Subcommand(
    name="simulate",
    help="Ongoing activity in the seeded firm (approvals, bookings, deals, payments) with the "
    "events and webhooks that go with it.",
    add_arguments=_add_arguments,
    run=_run,
)
