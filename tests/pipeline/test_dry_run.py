"""The dry run of a mapping draft against the time-entry inbox (sync.pipeline.dry_run)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sync.mappings.models import MappingSet
from sync.mappings.services import (
    mapping_entry_delete,
    mapping_entry_set,
    mapping_version_create_draft,
    mapping_version_update,
)
from sync.models import AccountingPeriod, TimeEntry
from sync.pipeline.dry_run import mapping_version_dry_run
from sync.pipeline.inbox import inbox_store
from sync.pipeline.models import Delivery, ExceptionItem, InboxItem, SyncRun
from tests.pipeline.test_time_posting import (  # noqa: F401 (firm is a fixture)
    entry,
    firm,
    process,
    publish_legal_entities,
)

pytestmark = pytest.mark.django_db
TODAY = dt.date(2026, 12, 7)


@pytest.fixture
def parked(firm):  # noqa: F811
    """October time posted with UK01 → 3; from November a version without UK01 parks it."""
    process(firm, [entry(1)])
    v2 = publish_legal_entities(firm["admin"], {"DE01": "5"}, dt.date(2026, 11, 1))
    AccountingPeriod.objects.create(
        legal_entity=firm["project"].legal_entity,
        start_date=dt.date(2026, 11, 1),
        end_date=dt.date(2026, 11, 30),
        status="open",
    )
    process(firm, [entry(2, date_performed="2026-11-03"), entry(3, date_performed="2026-11-04")])
    assert ExceptionItem.objects.filter(code="LEGAL_ENTITY_UNMAPPED").count() == 2
    return {**firm, "v2": v2}


def draft_of(ctx, based_on, effective: dt.date | None):
    mapping_set = MappingSet.objects.get(slug="legal-entity")
    draft = mapping_version_create_draft(
        mapping_set=mapping_set, based_on=based_on, user=ctx["admin"]
    )
    return mapping_version_update(
        version=draft, effective_from=effective, notes="", user=ctx["admin"]
    )


def snapshot() -> tuple:
    return (
        list(InboxItem.objects.order_by("id").values_list("id", "status", "processed_at")),
        list(ExceptionItem.objects.order_by("id").values_list("id", "status", "occurrences")),
        list(TimeEntry.objects.order_by("id").values_list("id", "status", "mapping_versions")),
        Delivery.objects.count(),
    )


def test_a_draft_mapping_the_parked_entity_would_post_and_clear_its_items(parked):
    draft = draft_of(parked, parked["v2"], dt.date(2026, 11, 2))
    mapping_entry_set(version=draft, source_value="UK01", target_value="7", user=parked["admin"])
    before = snapshot()

    run = mapping_version_dry_run(version=draft, today=TODAY)

    assert snapshot() == before  # nothing written
    assert (run.items_read, run.records, run.outcomes_changed) == (3, 3, 2)
    assert [c.external_id for c in run.changes] == ["2", "3"]  # October keeps its version
    change = run.changes[0]
    assert (str(change.before), str(change.after)) == (
        "parked LEGAL_ENTITY_UNMAPPED",
        "would post",
    )
    assert [(f.name, f.before, f.after) for f in change.fields] == [
        ("subsidiary", "—", "7"),
        ("mapping versions", "—", f"legal-entity v{draft.number}"),
    ]
    assert (change.amount, change.currency) == (Decimal("900.00"), "GBP")  # 7.5 h at 120
    assert change.clears == ("LEGAL_ENTITY_UNMAPPED",)
    [cleared] = run.clears
    assert (cleared.code, cleared.count, cleared.money) == (
        "LEGAL_ENTITY_UNMAPPED",
        2,
        {"GBP": Decimal("1800.00")},
    )
    assert run.creates == []


def test_a_draft_removing_a_mapping_lists_the_items_that_would_now_park(parked):
    # Planned from October: the posted October entry would lose its subsidiary.
    draft = draft_of(parked, parked["legal_entity_v1"], dt.date(2026, 10, 1))
    mapping_entry_delete(version=draft, source_value="UK01", user=parked["admin"])
    before = snapshot()

    run = mapping_version_dry_run(version=draft, today=TODAY)

    assert snapshot() == before
    [change] = run.changes
    assert change.external_id == "1"
    assert (str(change.before), str(change.after)) == ("unchanged", "parked LEGAL_ENTITY_UNMAPPED")
    assert change.creates == "LEGAL_ENTITY_UNMAPPED"
    [created] = run.creates
    assert (created.code, created.count, created.money) == (
        "LEGAL_ENTITY_UNMAPPED",
        1,
        {"GBP": Decimal("900.00")},
    )
    assert run.clears == []


def test_a_workspace_of_a_newly_mapped_entity_would_wait_for_its_project_instead(parked):
    from sync.pipeline.master_data import PROCESSORS
    from tests import factories as f

    f.LegalEntityFactory(code="UK02")
    stored = inbox_store(
        system="psa",
        entity="workspaces",
        records=[
            (
                "501",
                {
                    "id": "501",
                    "title": "Rollout",
                    "external_reference": "P-9",
                    "legal_entity": "UK02",
                },
            )
        ],
    )
    PROCESSORS["psa", "workspaces"](
        inbox_ids=[i.id for i in stored.new],
        run=SyncRun.objects.create(kind="process", started_at=timezone.now()),
    )
    assert ExceptionItem.objects.get(record_key="psa:workspaces:501").code == (
        "LEGAL_ENTITY_UNMAPPED"
    )
    draft = draft_of(parked, parked["v2"], dt.date(2026, 11, 2))
    mapping_entry_set(version=draft, source_value="UK02", target_value="9", user=parked["admin"])
    before = snapshot()

    run = mapping_version_dry_run(version=draft, today=TODAY)

    assert snapshot() == before
    assert run.flows == ("time posting", "PSA workspaces")
    assert run.items_read == 4
    [change] = run.changes
    assert (change.flow, change.external_id) == ("PSA workspaces", "501")
    assert (str(change.before), str(change.after)) == (
        "parked LEGAL_ENTITY_UNMAPPED",
        "parked PROJECT_NOT_PROVISIONED",
    )
    assert [(c.name, c.before, c.after) for c in change.fields] == [("subsidiary", "—", "9")]
    assert (run.clears, [(t.code, t.count) for t in run.creates]) == (
        [],
        [("PROJECT_NOT_PROVISIONED", 1)],
    )


def test_a_draft_without_a_date_is_tried_from_today(parked):
    draft = draft_of(parked, parked["v2"], None)
    mapping_entry_set(version=draft, source_value="UK01", target_value="7", user=parked["admin"])

    run = mapping_version_dry_run(version=draft, today=TODAY)

    assert run.effective_from == TODAY
    assert run.changes == []  # all the time is dated before today: nothing would change


def test_only_the_last_n_payloads_are_read_newest_first(parked):
    draft = draft_of(parked, parked["v2"], dt.date(2026, 11, 2))
    mapping_entry_set(version=draft, source_value="UK01", target_value="7", user=parked["admin"])

    run = mapping_version_dry_run(version=draft, limit=1, today=TODAY)

    assert run.items_read == 1
    assert [c.external_id for c in run.changes] == ["3"]


def test_a_set_no_flow_reads_judges_nothing(firm):  # noqa: F811
    from sync.mappings.services import mapping_set_create

    tax = mapping_set_create(slug="tax-code", name="Tax code", kind="tax_code", user=firm["admin"])
    draft = mapping_version_create_draft(mapping_set=tax, user=firm["admin"])
    run = mapping_version_dry_run(version=draft, today=TODAY)
    assert (run.flows, run.items_read, run.changes) == ((), 0, [])


def test_the_number_of_queries_does_not_grow_with_the_payloads(parked):
    draft = draft_of(parked, parked["v2"], dt.date(2026, 11, 2))
    mapping_entry_set(version=draft, source_value="UK01", target_value="7", user=parked["admin"])

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            mapping_version_dry_run(version=draft, today=TODAY)
        return len(captured.captured_queries)

    def workspaces(first: int, count: int) -> None:
        inbox_store(
            system="psa",
            entity="workspaces",
            records=[
                (
                    str(n),
                    {
                        "id": str(n),
                        "title": "W",
                        "external_reference": f"P-{n}",
                        "legal_entity": "UK01",
                    },
                )
                for n in range(first, first + count)
            ],
        )

    workspaces(0, 1)
    small = queries()  # 3 time entries, 1 workspace
    # Past SQLite's 999 parameters: the `__any` lists stay one query each.
    inbox_store(
        system="psa",
        entity="time_entries",
        records=[entry(n, date_performed="2026-11-05") for n in range(100, 1300)],
    )
    workspaces(1, 1200)
    assert queries() == small
