"""The seeded firm's approved expenses reach the ERP as expense reports exactly once, on real
PostgreSQL against the served sandbox: counted in the ERP through its own API (SuiteQL, by
externalId) after a first cycle, a second cycle, a replay and answers dropped after the ERP
committed; the reports the seeded history already holds are linked, never written twice."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.utils import timezone

from sandbox import storage
from sandbox.generator.seed import sandbox_seed
from sandbox.models import SandboxRecord
from sandbox.product_setup import connections_from_sandbox, legal_entity_mapping_from_sandbox
from sync.integrations.registry import target_connector_for
from sync.models import Expense
from sync.pipeline.cycle import sync_cycle_run
from sync.pipeline.delivery import deliveries_send_due
from sync.pipeline.models import Connection, Delivery, ExceptionItem, InboxItem

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]

OPERATION = "erp.expense_report.upsert"


@pytest.fixture
def firm(served_sandbox) -> dict:
    """A small seeded firm in the served sandbox, Ledgerbridge connected to it."""
    manifest = sandbox_seed(seed=42, time_entries=300, reset=True).manifest
    connections_from_sandbox(base_url=served_sandbox.base_url)
    legal_entity_mapping_from_sandbox()
    return {"manifest": manifest, "erp": Connection.objects.get(system="erp")}


def erp_report_counts(erp: Connection) -> Counter[str]:
    """How many expense reports the ERP lists per externalId, asked through its SuiteQL API."""
    connector = target_connector_for(erp)
    try:
        return Counter(
            row.get("externalid")
            for page in connector.suiteql("SELECT id, externalid FROM expenseReport ORDER BY id")
            for row in page.records
        )
    finally:
        connector.close()


def approve_new_expenses(firm, n: int) -> list[str]:
    """The PSA approves `n` new expenses (copies of seeded ones, dated in the open backlog
    week): returns their PSA ids."""
    day = dt.date.fromisoformat(firm["manifest"]["backlog_from"])
    seeded = storage.record_queryset(system="kantata", object_type="expenses").filter(
        status="approved"
    )
    made = []
    for record in list(seeded.order_by("id"))[:n]:
        new = storage.record_create(
            system="kantata",
            object_type="expenses",
            parent_id=record.parent_id,
            status="approved",
            data={**record.data, "date": day.isoformat(), "approval_status": "approved"},
        )
        made.append(str(new.pk))
    return made


def seeded_reports() -> dict[str, tuple]:
    return {
        r.external_id: (r.pk, r.data, r.updated_at)
        for r in SandboxRecord.objects.filter(system="netsuite", object_type="expenseReport")
    }


def test_seeded_expenses_are_posted_once_through_cycles_a_replay_and_dropped_answers(
    firm, served_sandbox
):
    erp = firm["erp"]
    history = seeded_reports()
    assert history, "the seeded firm holds expense reports from before Ledgerbridge"
    new = approve_new_expenses(firm, 4)

    first = sync_cycle_run()
    second = sync_cycle_run()
    counts = erp_report_counts(erp)

    assert first.status == "succeeded", first.error
    assert max(counts.values()) == 1  # one report per expense key, history included
    assert set(history) | {f"KT-EX-{psa_id}" for psa_id in new} <= set(counts)
    assert {k: v for k, v in seeded_reports().items() if k in history} == history  # untouched
    assert set(Expense.objects.filter(psa_id__in=new).values_list("status", flat=True)) == {
        "posted"
    }
    linked = Expense.objects.exclude(psa_id__in=new)
    assert set(linked.values_list("status", flat=True)) == {"posted"}
    assert linked.count() == len(history)  # every seeded report linked to its expense
    assert second.delivered == 0
    new_keys = [f"psa:expense:{psa_id}" for psa_id in new]
    assert not ExceptionItem.objects.filter(record_key__in=new_keys).exists()
    delivered = Delivery.objects.filter(operation=OPERATION, state="delivered").count()
    assert delivered == len(counts) - len(history)

    # A replay of every expense the PSA sent: nothing new is created, sent or written.
    InboxItem.objects.filter(system="psa", entity="expenses").update(status="pending")
    replay = sync_cycle_run()
    assert (replay.created, replay.delivered) == (0, 0)
    assert Delivery.objects.filter(operation=OPERATION).count() == delivered
    assert erp_report_counts(erp) == counts

    # The ERP commits each new report but its answer is dropped (and so is the look-up): the
    # retry upserts the same key, so each lands once.
    late = approve_new_expenses(firm, 3)
    sync_cycle_run(deliver=False)
    faults = served_sandbox.app.faults
    faults.configure(system="netsuite", changes={"drop_rate": 1.0})
    deliveries_send_due(limit=50)
    faults.reset(seed=7)
    assert erp_report_counts(erp) == counts + Counter({f"KT-EX-{psa_id}": 1 for psa_id in late})
    Delivery.objects.filter(operation=OPERATION, state="pending").update(
        next_attempt_at=timezone.now()
    )
    deliveries_send_due(limit=50)
    after = erp_report_counts(erp)
    assert after == counts + Counter({f"KT-EX-{psa_id}": 1 for psa_id in late})
    assert Delivery.objects.filter(operation=OPERATION).exclude(state="delivered").count() == 0
    posted = Expense.objects.filter(psa_id__in=late).values_list("status", flat=True)
    assert set(posted) == {"posted"}
