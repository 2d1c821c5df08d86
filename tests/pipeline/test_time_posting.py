"""Approved PSA time becomes exactly one ERP posting, or an exception item that says why not."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.errors import PayloadError
from sync.integrations.kantata.time_entries import time_entry_read
from sync.mappings.services import (
    mapping_entry_set,
    mapping_set_create,
    mapping_version_create_draft,
    mapping_version_publish,
    mapping_version_submit,
)
from sync.models import AccountingPeriod, ExternalRef, TimeEntry
from sync.pipeline.exception_items import record_key_fit
from sync.pipeline.inbox import inbox_store
from sync.pipeline.models import Delivery, ExceptionItem, InboxItem, SyncRun
from sync.pipeline.time_posting.flow import time_entries_process
from tests import factories as f

pytestmark = pytest.mark.django_db
OCT = dt.date(2026, 10, 14)


def ref(system: str, record, external_id: str) -> None:
    ExternalRef.objects.create(
        system=system,
        content_type=ContentType.objects.get_for_model(record),
        object_id=str(record.pk),
        external_id=external_id,
    )


def publish_legal_entities(user, entries: dict[str, str], effective: dt.date):
    from sync.mappings.models import MappingSet

    mapping_set = MappingSet.objects.filter(slug="legal-entity").first() or mapping_set_create(
        slug="legal-entity", name="Legal entity → ERP subsidiary", kind="legal_entity", user=user
    )
    draft = mapping_version_create_draft(mapping_set=mapping_set, user=user)
    for source, target in entries.items():
        mapping_entry_set(version=draft, source_value=source, target_value=target, user=user)
    mapping_version_submit(version=draft, user=user)
    return mapping_version_publish(version=draft, effective_from=effective, user=None)


@pytest.fixture
def firm(django_user_model, erp_connection):
    admin = django_user_model.objects.create_user("mapper")
    gbp = f.currency("GBP")
    uk = f.LegalEntityFactory(code="UK01", functional_currency=gbp)
    customer = f.CustomerFactory(legal_entity=uk, status="approved", name="Acme Ltd")
    project = f.ProjectFactory(customer=customer, legal_entity=uk, currency=gbp, code="P-100")
    task = f.TaskFactory(project=project, code="T-1")
    worker = f.WorkerFactory(legal_entity=uk, cost_centre=f.CostCentreFactory(legal_entity=uk))
    placeholder = f.RolePlaceholderFactory(project=project)
    ref("psa", project, "ws-1")
    ref("psa", task, "st-1")
    ref("psa", worker, "u-1")
    ref("psa", placeholder, "u-ph")
    ref("erp", worker, "emp-77")
    AccountingPeriod.objects.create(
        legal_entity=uk,
        start_date=dt.date(2026, 10, 1),
        end_date=dt.date(2026, 10, 31),
        status="open",
    )
    AccountingPeriod.objects.create(
        legal_entity=uk,
        start_date=dt.date(2026, 9, 1),
        end_date=dt.date(2026, 9, 30),
        status="closed",
    )
    v1 = publish_legal_entities(admin, {"UK01": "3"}, dt.date(2026, 1, 1))
    return {
        "admin": admin,
        "project": project,
        "worker": worker,
        "erp": erp_connection,
        "legal_entity_v1": v1,
    }


def entry(n: int, **change) -> tuple[str, dict]:
    payload = {
        "id": str(n),
        "workspace_id": "ws-1",
        "story_id": "st-1",
        "user_id": "u-1",
        "date_performed": OCT.isoformat(),
        "time_in_minutes": 450,
        "billable": True,
        "approved": True,
        "rate_in_cents": 12000,
        "currency": "GBP",
    }
    payload.update(change)
    return str(n), payload


def process(firm, records) -> tuple:
    stored = inbox_store(system="psa", entity="time_entries", records=records)
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    counts = time_entries_process(inbox_ids=[i.id for i in stored.new], run=run, erp=firm["erp"])
    return counts, run


def test_an_approved_entry_becomes_one_canonical_entry_and_one_erp_delivery(firm):
    counts, run = process(firm, [entry(1)])

    te = TimeEntry.objects.get()
    assert (te.hours, te.bill_rate, te.currency_id, te.status) == (
        Decimal("7.50"),
        Decimal("120.0000"),
        "GBP",
        "approved",
    )
    assert te.mapping_versions == {"legal-entity": firm["legal_entity_v1"].number}
    assert te.history.get().history_actor == f"run:{run.id}"
    delivery = Delivery.objects.get()
    assert delivery.external_id == "KT-TE-1"  # the PSA's id: what the ERP already knows
    assert delivery.payload["body"]["subsidiary"] == {"id": "3"}
    assert delivery.payload["body"]["employee"] == {"id": "emp-77"}
    assert delivery.payload["body"]["customer"] == {"externalId": "P-100"}
    assert delivery.payload["amount"] == "900.00"
    assert counts.created == 1
    assert counts.deliveries == 1
    assert InboxItem.objects.get().status == "processed"


def replay_all(firm):
    InboxItem.objects.update(status="pending")
    return time_entries_process(
        inbox_ids=list(InboxItem.objects.values_list("id", flat=True)),
        run=SyncRun.objects.create(kind="replay", started_at=timezone.now()),
        erp=firm["erp"],
    )


def test_pulling_the_same_page_twice_stores_and_posts_it_once(firm):
    process(firm, [entry(1)])
    counts, _ = process(firm, [entry(1)])  # the inbox skips the known payload
    assert counts.created == counts.updated == 0
    assert TimeEntry.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_replaying_an_inbox_item_posts_nothing_new(firm):
    process(firm, [entry(1)])
    counts = replay_all(firm)
    assert counts.unchanged == 1
    assert TimeEntry.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_a_changed_entry_gets_a_new_version_and_a_second_delivery_to_the_same_erp_record(firm):
    process(firm, [entry(1)])
    process(firm, [entry(1, time_in_minutes=480)])
    te = TimeEntry.objects.get()
    assert te.version == 2
    assert te.hours == Decimal("8.00")
    keys = set(Delivery.objects.values_list("external_id", "record_version"))
    assert keys == {("KT-TE-1", 1), ("KT-TE-1", 2)}


@pytest.mark.parametrize(
    ("change", "queue", "code"),
    [
        ({"date_performed": "2026-09-15"}, "time_and_expense", "PERIOD_CLOSED"),
        ({"story_id": "st-unknown"}, "project_setup", "TASK_UNKNOWN"),
        ({"user_id": "u-ph"}, "project_setup", "WORKER_IS_PLACEHOLDER"),
        ({"workspace_id": "ws-unknown"}, "project_setup", "PROJECT_UNKNOWN"),
    ],
)
def test_a_planted_fault_parks_the_entry_in_its_queue_and_posts_nothing(firm, change, queue, code):
    process(firm, [entry(1, **change)])
    item = ExceptionItem.objects.get()
    assert (item.queue, item.code, item.status) == (queue, code, "open")
    assert item.money_at_risk == Decimal("900.00")
    assert not TimeEntry.objects.exists()
    assert not Delivery.objects.exists()
    assert InboxItem.objects.get().status == "parked"


def test_an_unknown_currency_parks_that_entry_and_the_rest_of_the_batch_posts(firm):
    counts, _ = process(firm, [entry(1, currency="XYZ"), entry(2)])
    item = ExceptionItem.objects.get()
    assert (item.queue, item.code, item.record_key) == (
        "time_and_expense",
        "CURRENCY_UNKNOWN",
        "psa:time_entry:1",
    )
    assert "XYZ" in item.message
    assert list(TimeEntry.objects.values_list("currency_id", flat=True)) == ["GBP"]
    assert Delivery.objects.get().external_id == "KT-TE-2"
    assert counts.created == 1


def test_time_the_erp_holds_is_linked_only_with_a_known_currency(firm):
    """Time already in the ERP skips the posting rules, not the currency check: an unknown
    code must never reach a time entry (its foreign key has no database constraint)."""
    from sync.pipeline.target_records import target_records_upsert

    target_records_upsert(
        connection=firm["erp"],
        record_type="timeBill",
        source="pull",
        known={"KT-TE-1": "901", "KT-TE-2": "902"},
    )
    counts, _ = process(firm, [entry(1, currency="XYZ"), entry(2)])
    assert ExceptionItem.objects.get().code == "CURRENCY_UNKNOWN"
    assert list(TimeEntry.objects.values_list("currency_id", "status")) == [("GBP", "posted")]
    assert (counts.created, counts.linked) == (1, 1)
    assert not Delivery.objects.exists()


def test_a_worker_without_a_cost_centre_is_parked_for_time_and_expense(firm):
    firm["worker"].cost_centre = None
    firm["worker"].save()
    process(firm, [entry(1)])
    assert ExceptionItem.objects.get().code == "COST_CENTRE_MISSING"


def test_an_unmapped_legal_entity_goes_to_the_mapping_admins_and_posts_after_a_fix(firm):
    process(firm, [entry(1, date_performed="2026-10-14")])
    assert not ExceptionItem.objects.exists()
    # A new version effective in November drops UK01: November time cannot be mapped.
    publish_legal_entities(firm["admin"], {"DE01": "5"}, dt.date(2026, 11, 1))
    AccountingPeriod.objects.create(
        legal_entity=firm["project"].legal_entity,
        start_date=dt.date(2026, 11, 1),
        end_date=dt.date(2026, 11, 30),
        status="open",
    )
    process(firm, [entry(2, date_performed="2026-11-03")])
    item = ExceptionItem.objects.get()
    assert (item.queue, item.code) == ("mapping", "LEGAL_ENTITY_UNMAPPED")
    assert item.legal_entity == "UK01"  # the project's, so its people see it

    # The fix: publish a version that maps UK01 again, then replay the parked inbox item.
    fixed = publish_legal_entities(firm["admin"], {"UK01": "3", "DE01": "5"}, dt.date(2026, 11, 2))
    InboxItem.objects.filter(status="parked").update(status="pending")
    time_entries_process(
        inbox_ids=list(InboxItem.objects.filter(status="pending").values_list("id", flat=True)),
        run=SyncRun.objects.create(kind="replay", started_at=timezone.now()),
        erp=firm["erp"],
    )
    item.refresh_from_db()
    assert item.status == "resolved"
    november = TimeEntry.objects.get(work_date=dt.date(2026, 11, 3))
    october = TimeEntry.objects.get(work_date=OCT)
    assert november.mapping_versions == {"legal-entity": fixed.number}
    assert october.mapping_versions == {"legal-entity": firm["legal_entity_v1"].number}
    assert Delivery.objects.count() == 2


def test_a_rerun_of_a_failing_entry_keeps_one_open_item(firm):
    process(firm, [entry(1, story_id="st-unknown")])
    replay_all(firm)
    item = ExceptionItem.objects.get()
    assert item.occurrences == 2


def test_a_non_owner_change_is_refused_while_the_owner_change_to_the_same_entry_applies(firm):
    from sync.mappings.ownership_services import ownership_rule_set

    # Billing owns the bill rate of time entries in this firm; the PSA owns the hours.
    ownership_rule_set(
        entity="time_entry",
        field="bill_rate",
        owner_system="billing",
        effective_from=dt.date(2026, 1, 1),
        user=firm["admin"],
    )
    process(firm, [entry(1)])
    process(firm, [entry(1, time_in_minutes=480, rate_in_cents=9000)])

    te = TimeEntry.objects.get()
    assert te.hours == Decimal("8.00")  # the PSA's own field: applied
    assert te.bill_rate == Decimal("120.0000")  # billing's field: refused, unchanged
    item = ExceptionItem.objects.get()
    assert (item.stage, item.code) == ("own", "FIELD_OWNED_ELSEWHERE")
    assert item.detail == {
        "field": "bill_rate",
        "attempted": "90.00",
        "current": "120.0000",
        "owner": "billing",
        "source": "psa",
    }
    assert "the billing owns that field" in item.message


def test_unapproved_time_is_stored_in_the_inbox_but_not_posted(firm):
    counts, _ = process(firm, [entry(1, approved=False)])
    assert counts.unchanged == 1
    assert not TimeEntry.objects.exists()
    assert InboxItem.objects.get().status == "processed"


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({}, "`id` is missing"),
        (entry(1, time_in_minutes="450")[1], "whole number of minutes"),
        (entry(1, time_in_minutes=-5)[1], "outside"),
        (entry(1, billable="yes")[1], "`billable` must be true or false"),
        (entry(1, currency="POUNDS")[1], "three-letter"),
        (entry(1, date_performed="14/10/2026")[1], "not a YYYY-MM-DD date"),
        (entry(1, date_performed="20261014")[1], "not a YYYY-MM-DD date"),
        (entry(1, date_performed="2026-W42-3")[1], "not a YYYY-MM-DD date"),
        (entry(1, story_id="x" * 10_000)[1], "at most 255"),
        (entry(1, rate_in_cents=12.5)[1], "whole number of cents"),
        (entry(1, rate_in_cents=10**16)[1], "beyond any bill rate"),
        (entry(1, rate_in_cents=10**40)[1], "beyond any bill rate"),
        (entry(1, id=True)[1], "must be an id"),
        (entry(1, approved=1)[1], "`approved` must be true or false"),
        (entry(1, currency="ßab")[1], "three-letter"),
        (entry(1, currency="ÉCU")[1], "three-letter"),
        (entry(1, id="9" * 241)[1], "at most 240"),
        ([1, 2, 3], "not a JSON object"),
    ],
)
def test_a_malformed_payload_is_refused_with_a_reason_a_person_can_act_on(payload, words):
    with pytest.raises(PayloadError, match=words.replace("`", "`")):
        time_entry_read(payload)


def test_a_malformed_payload_becomes_an_integration_exception_and_nothing_is_written(firm):
    process(firm, [entry(1, time_in_minutes="lots"), entry(2)])
    item = ExceptionItem.objects.get()
    assert (item.queue, item.stage, item.code) == ("integration_ops", "parse", "MALFORMED_PAYLOAD")
    assert "time_in_minutes" in item.message
    assert TimeEntry.objects.count() == 1  # the good entry of the same batch still posts


def test_an_integer_beyond_64_bits_is_read_back_from_the_inbox_exactly(firm):
    # The inbox keeps it exactly (jsonb numeric); reading it back as a float would round it
    # and show the person fixing it another number than the PSA sent.
    huge = 10**40 + 7
    process(firm, [entry(1, rate_in_cents=huge), entry(2)])
    item = ExceptionItem.objects.get()
    assert "beyond any bill rate" in item.message
    assert item.payload["rate_in_cents"] == huge
    assert list(TimeEntry.objects.values_list("psa_id", flat=True)) == ["2"]


def test_an_entry_id_too_long_for_its_keys_is_parked_and_the_batch_goes_on(firm):
    # 250 characters: the inbox takes it, but `psa:time_entry:<id>` would not fit a record key.
    long_id = "7" * 250
    process(firm, [(long_id, entry(1, id=long_id)[1]), entry(2)])
    item = ExceptionItem.objects.get()
    assert (item.code, item.stage) == ("MALFORMED_PAYLOAD", "parse")
    assert "at most 240" in item.message
    assert item.record_key == record_key_fit(f"psa:time_entry:{long_id}")
    assert len(item.record_key) == 255
    assert list(TimeEntry.objects.values_list("psa_id", flat=True)) == ["2"]


def test_the_number_of_queries_does_not_grow_with_the_batch(firm):
    import re
    from collections import Counter

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def statements(first: int, count: int) -> Counter:
        stored = inbox_store(
            system="psa",
            entity="time_entries",
            records=[entry(n) for n in range(first, first + count)],
        )
        run = SyncRun.objects.create(kind="process", started_at=timezone.now())
        with CaptureQueriesContext(connection) as captured:
            time_entries_process(inbox_ids=[i.id for i in stored.new], run=run, erp=firm["erp"])
        return Counter(
            re.sub(r"_django_curs_\w+", "cursor", q["sql"]).split("(")[0].split(" WHERE")[0][:60]
            for q in captured.captured_queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
        )

    statements(1, 2)  # warms the content-type cache
    small = statements(10, 5)
    large = statements(1000, 200)
    assert TimeEntry.objects.count() == 207
    reads = lambda c: {k: v for k, v in c.items() if not k.startswith("INSERT")}  # noqa: E731
    assert reads(large) == reads(small)  # every read is one query, whatever the batch size
    # Inserts are batched (SQLite caps one INSERT's parameters): a few per table, not per row.
    assert all(n <= 6 for k, n in large.items() if k.startswith("INSERT")), large


def test_a_change_to_posted_time_is_parked_for_a_reversal_not_edited(firm):
    from sync.lifecycle import record_transition

    process(firm, [entry(1)])
    record_transition(record=TimeEntry.objects.get(), to="posted", actor="system:test")
    process(firm, [entry(1, time_in_minutes=300)])

    te = TimeEntry.objects.get()
    assert (te.status, te.hours) == ("posted", Decimal("7.50"))
    item = ExceptionItem.objects.get()
    assert item.code == "POSTED_ENTRY_CHANGED"
    assert "hours" in item.message
    assert Delivery.objects.count() == 1


def test_a_person_replays_a_whole_root_cause_group_after_fixing_the_reference_data(
    firm, django_user_model
):
    from sync.pipeline.replay import exception_items_replay_group

    fin = django_user_model.objects.create_user("fin")
    firm["erp"].system = "erp"
    firm["erp"].save()
    process(firm, [entry(1, date_performed="2026-09-15"), entry(2, date_performed="2026-09-16")])
    items = list(ExceptionItem.objects.all())
    assert {i.code for i in items} == {"PERIOD_CLOSED"}
    assert len({i.root_cause for i in items}) == 1

    AccountingPeriod.objects.filter(start_date=dt.date(2026, 9, 1)).update(status="open")
    result = exception_items_replay_group(root_cause=items[0].root_cause, user=fin)

    assert (result.items, result.resolved, result.still_open) == (2, 2, 0)
    assert TimeEntry.objects.count() == 2
    assert Delivery.objects.count() == 2
    actors = set(items[0].history.values_list("history_actor", flat=True))
    assert "user:fin" in actors


def test_a_delivered_entry_is_posted_with_its_erp_ref_and_a_stale_version_is_not(firm):
    from sync.pipeline.outbox.claims import deliveries_claim
    from sync.pipeline.outbox.outcomes import Outcome, delivery_outcome_record

    process(firm, [entry(1), entry(2)])
    process(firm, [entry(2, time_in_minutes=480)])  # entry 2 is at version 2 now
    claimed = {(d.external_id, d.record_version): d for d in deliveries_claim(limit=10)}
    assert set(claimed) == {("KT-TE-1", 1), ("KT-TE-2", 1), ("KT-TE-2", 2)}
    for (key, version), delivery in claimed.items():
        if version == 1:
            delivery_outcome_record(
                delivery=delivery, outcome=Outcome(ok=True, target_id=f"{key}-{version}")
            )

    entry_type = ContentType.objects.get_for_model(TimeEntry)
    by_psa = {e.psa_id: e for e in TimeEntry.objects.all()}
    first, second = by_psa["1"], by_psa["2"]
    assert first.status == "posted"
    assert first.history.first().history_actor == "system:outbox"
    assert (
        ExternalRef.objects.get(
            system="erp", content_type=entry_type, object_id=str(first.pk)
        ).external_id
        == "KT-TE-1-1"
    )
    # Version 1 of entry 2 reached the ERP, but version 2 is on its way: not posted yet.
    assert second.status == "approved"
    delivery_outcome_record(
        delivery=claimed["KT-TE-2", 2], outcome=Outcome(ok=True, target_id="KT-TE-2-2")
    )
    second.refresh_from_db()
    assert second.status == "posted"


def test_time_in_a_period_the_erp_had_not_sent_yet_posts_on_a_later_cycle_without_a_replay(firm):
    from sync.pipeline.cycle import sync_cycle_run

    process(
        firm,
        [
            entry(1, date_performed="2026-11-03"),
            entry(2, user_id="u-ph"),
            entry(3, date_performed="2026-09-15"),
        ],
    )
    assert sorted(ExceptionItem.objects.values_list("code", flat=True)) == [
        "PERIOD_CLOSED",
        "PERIOD_MISSING",
        "WORKER_IS_PLACEHOLDER",
    ]
    AccountingPeriod.objects.create(  # the ERP's November arrives with its next sync
        legal_entity=firm["project"].legal_entity,
        start_date=dt.date(2026, 11, 1),
        end_date=dt.date(2026, 11, 30),
        status="open",
    )
    AccountingPeriod.objects.filter(start_date=dt.date(2026, 9, 1)).update(status="open")
    ExceptionItem.objects.update(last_failed_at=timezone.now() - dt.timedelta(minutes=5))

    run = sync_cycle_run(connections=[], deliver=False)

    # A placeholder's booking needs a person in the PSA; time in a closed period may have been
    # reposted there as a new entry since, so a person replays it, not the cycle.
    assert run.reoffered == 1
    te = TimeEntry.objects.get()
    assert te.work_date == dt.date(2026, 11, 3)
    assert Delivery.objects.get().external_id == "KT-TE-1"
    assert ExceptionItem.objects.get(code="PERIOD_MISSING").status == "resolved"
    assert set(
        ExceptionItem.objects.exclude(code="PERIOD_MISSING").values_list("status", flat=True)
    ) == {"open"}


def test_only_the_latest_payload_of_a_parked_entry_is_re_offered(firm):
    from sync.pipeline.reoffer import parked_items_reoffer

    process(firm, [entry(1, date_performed="2026-11-03")])  # PERIOD_MISSING
    process(firm, [entry(1, date_performed="2026-11-03", time_in_minutes="lots")])  # malformed
    ExceptionItem.objects.update(last_failed_at=timezone.now() - dt.timedelta(minutes=5))

    assert parked_items_reoffer() == 0  # the stale first payload must not be posted
    assert set(InboxItem.objects.values_list("status", flat=True)) == {"parked"}


def test_without_an_enabled_erp_parked_time_is_not_re_offered(firm):
    from sync.pipeline.cycle import sync_cycle_run

    process(firm, [entry(1, date_performed="2026-11-03")])  # PERIOD_MISSING
    ExceptionItem.objects.update(last_failed_at=timezone.now() - dt.timedelta(minutes=5))
    firm["erp"].enabled = False
    firm["erp"].save()

    run = sync_cycle_run(connections=[], deliver=False)

    assert run.reoffered == 0  # it could only wait pending: it stays parked, with its item
    assert InboxItem.objects.get().status == "parked"


_good_id = st.one_of(st.text(min_size=1, max_size=255), st.integers(0, 10**30))
_valid = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(min_size=1, max_size=240), st.integers(0, 10**30)),
        "workspace_id": _good_id,
        "story_id": _good_id,
        "user_id": _good_id,
        "date_performed": st.dates().map(dt.date.isoformat),
        "time_in_minutes": st.integers(1, 1_440),
        "billable": st.booleans(),
        "approved": st.booleans(),
        "rate_in_cents": st.one_of(st.none(), st.integers(0, 10**16 - 1)),
        "currency": st.sampled_from(["GBP", "usd", "Eur"]),
    }
)
_wrong = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(),
    st.text(max_size=300),
    st.just(""),
    st.just("x" * 256),
    st.just([1]),
    st.just("2026-02-30"),
    st.just("20261014"),
    st.just("€UR"),
    st.just("ÉCU"),
    st.just("ßab"),
    st.just("x" * 241),
)


@settings(max_examples=500, deadline=None)
@given(
    payload=_valid,
    broken=st.dictionaries(
        st.sampled_from(
            [
                "id",
                "workspace_id",
                "story_id",
                "user_id",
                "date_performed",
                "time_in_minutes",
                "billable",
                "approved",
                "rate_in_cents",
                "currency",
            ]
        ),
        _wrong,
        max_size=2,
    ),
)
def test_the_fast_reading_accepts_exactly_what_the_careful_one_accepts_with_the_same_values(
    payload,
    broken,
):
    from sync.integrations.kantata.time_entries import _careful, _plain

    payload = {**payload, **broken}
    fast = _plain(payload)
    try:
        careful = _careful(payload)
    except PayloadError:
        careful = None
    if fast is not None:  # the fast reading may pass an entry on, never read it differently
        assert fast == careful
    if careful is not None and payload["rate_in_cents"] is not None:
        assert fast == careful  # only a missing rate (0.00) takes the careful path
