"""Approved PSA expenses become exactly one ERP expense report each, or an exception item that
says why not; a rejection after posting voids the report."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sync.mappings.services import (
    mapping_entry_set,
    mapping_set_create,
    mapping_version_create_draft,
    mapping_version_publish,
    mapping_version_submit,
)
from sync.models import AccountingPeriod, Currency, Expense, ExternalRef
from sync.pipeline.cycle import processing_registry
from sync.pipeline.expense_posting.erp_reports import expense_reports_process
from sync.pipeline.expense_posting.flow import expenses_process
from sync.pipeline.inbox import inbox_store
from sync.pipeline.models import Delivery, ExceptionItem, InboxItem, SyncRun, TargetRecord
from sync.pipeline.outbox.outcomes import Outcome, delivery_outcome_record
from sync.pipeline.target_records import target_records_upsert
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


def publish(user, slug: str, kind: str, entries: dict[str, str], **options):
    mapping_set = mapping_set_create(slug=slug, name=slug, kind=kind, user=user, **options)
    draft = mapping_version_create_draft(mapping_set=mapping_set, user=user)
    for source, target in entries.items():
        mapping_entry_set(version=draft, source_value=source, target_value=target, user=user)
    mapping_version_submit(version=draft, user=user)
    return mapping_version_publish(version=draft, effective_from=dt.date(2026, 1, 1), user=None)


@pytest.fixture
def firm(django_user_model, erp_connection):
    admin = django_user_model.objects.create_user("mapper")
    uk = f.LegalEntityFactory(code="UK01", functional_currency=f.currency("GBP"))
    gbp = Currency.objects.get(code="GBP")
    customer = f.CustomerFactory(legal_entity=uk, status="approved", name="Acme Ltd")
    project = f.ProjectFactory(customer=customer, legal_entity=uk, currency=gbp, code="P-100")
    cost_centre = f.CostCentreFactory(legal_entity=uk)
    worker = f.WorkerFactory(legal_entity=uk, cost_centre=cost_centre)
    ref("psa", project, "ws-1")
    ref("psa", worker, "u-1")
    ref("erp", worker, "emp-77")
    ref("erp", cost_centre, "dept-5")
    ref("erp", gbp, "1")
    for start, end, status in [
        ((2026, 10, 1), (2026, 10, 31), "open"),
        ((2026, 9, 1), (2026, 9, 30), "closed"),
    ]:
        AccountingPeriod.objects.create(
            legal_entity=uk, start_date=dt.date(*start), end_date=dt.date(*end), status=status
        )
    publish(admin, "legal-entity", "legal_entity", {"UK01": "3"})
    return {"admin": admin, "erp": erp_connection, "project": project}


def expense(n: int, **change) -> tuple[str, dict]:
    payload = {
        "id": str(n),
        "workspace_id": "ws-1",
        "user_id": "u-1",
        "date": OCT.isoformat(),
        "category": "Hotel",
        "amount_in_cents": 18_950,
        "currency": "GBP",
        "billable": True,
        "approved": True,
        "approval_status": "approved",
    }
    payload.update(change)
    return str(n), payload


def process(firm, records):
    stored = inbox_store(system="psa", entity="expenses", records=records)
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    return expenses_process(inbox_ids=[i.id for i in stored.new], run=run, erp=firm["erp"])


def replay_all(firm):
    InboxItem.objects.filter(entity="expenses").update(status="pending")
    return expenses_process(
        inbox_ids=list(InboxItem.objects.filter(entity="expenses").values_list("id", flat=True)),
        run=SyncRun.objects.create(kind="replay", started_at=timezone.now()),
        erp=firm["erp"],
    )


def confirm(delivery: Delivery, target_id: str = "901") -> None:
    """The ERP answered the delivery's upsert with the report's internal id."""
    Delivery.objects.filter(pk=delivery.pk).update(state="in_flight")
    delivery.refresh_from_db()
    delivery_outcome_record(delivery=delivery, outcome=Outcome(ok=True, target_id=target_id))


def test_an_approved_expense_becomes_one_canonical_expense_and_one_erp_report_delivery(firm):
    counts = process(firm, [expense(1)])

    e = Expense.objects.get()
    assert (e.psa_id, e.amount, e.currency_id) == ("1", Decimal("189.50"), "GBP")
    assert (e.status, e.category, e.psa_category) == ("approved", "lodging", "Hotel")
    assert e.history.get().history_actor.startswith("run:")
    delivery = Delivery.objects.get()
    assert delivery.external_id == "KT-EX-1"  # the key the ERP's history holds
    assert delivery.operation == "erp.expense_report.upsert"
    body = delivery.payload["body"]
    assert body["entity"] == {"id": "emp-77"}
    assert body["subsidiary"] == {"id": "3"}
    assert body["currency"] == {"id": "1"}
    assert body["department"] == {"id": "dept-5"}
    assert body["approvalStatus"] == {"id": "2"}
    (line,) = body["expense"]["items"]
    assert (line["amount"], line["category"], line["customer"]) == (
        "189.50",
        "Hotel",
        {"externalId": "P-100"},
    )
    assert (delivery.payload["amount"], delivery.payload["currency"]) == ("189.50", "GBP")
    assert (counts.created, counts.deliveries) == (1, 1)


def test_the_same_expense_pulled_again_or_replayed_posts_nothing_new(firm):
    process(firm, [expense(1)])
    again = process(firm, [expense(1)])  # the inbox skips the known payload
    replayed = replay_all(firm)
    assert (again.created, replayed.created, replayed.updated, replayed.unchanged) == (0, 0, 0, 1)
    assert Expense.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_an_unapproved_expense_never_seen_before_is_not_taken(firm):
    counts = process(firm, [expense(1, approved=False, approval_status="submitted")])
    assert counts.unchanged == 1
    assert not Expense.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    ("change", "queue", "code"),
    [
        ({"date": "2026-09-15"}, "time_and_expense", "PERIOD_CLOSED"),
        ({"date": "2026-11-15"}, "time_and_expense", "PERIOD_MISSING"),
        ({"workspace_id": "ws-unknown"}, "project_setup", "PROJECT_UNKNOWN"),
        ({"user_id": "u-unknown"}, "time_and_expense", "WORKER_UNKNOWN"),
        ({"currency": "XYZ"}, "time_and_expense", "CURRENCY_UNKNOWN"),
    ],
)
def test_a_failing_rule_parks_the_expense_in_its_queue_with_its_amount_at_risk(
    firm, change, queue, code
):
    process(firm, [expense(1, **change)])
    item = ExceptionItem.objects.get()
    assert (item.queue, item.code, item.status, item.record_key) == (
        queue,
        code,
        "open",
        "psa:expense:1",
    )
    assert item.money_at_risk == Decimal("189.50")
    assert not Expense.objects.exists()
    assert not Delivery.objects.exists()
    assert InboxItem.objects.get().status == "parked"


def test_a_rule_message_speaks_of_the_expense_not_of_time(firm):
    process(firm, [expense(1, workspace_id="ws-unknown")])
    assert ExceptionItem.objects.get().message.startswith("An expense was entered on project")


def test_an_unmapped_legal_entity_parks_the_expense_for_the_mapping_admins(firm):
    project = firm["project"]
    project.legal_entity = f.LegalEntityFactory(code="NL01")
    project.save()
    process(firm, [expense(1)])
    item = ExceptionItem.objects.get()
    assert (item.queue, item.code) == ("mapping", "LEGAL_ENTITY_UNMAPPED")


def test_a_published_category_mapping_translates_the_category_and_parks_the_unmapped(firm):
    publish(
        firm["admin"], "expense-category", "field_map", {"Hotel": "Lodging (ERP)"}, system="psa"
    )
    process(firm, [expense(1), expense(2, category="Gadgets")])
    body = Delivery.objects.get().payload["body"]
    assert body["expense"]["items"][0]["category"] == "Lodging (ERP)"
    assert Expense.objects.get().mapping_versions.keys() == {"legal-entity", "expense-category"}
    item = ExceptionItem.objects.get()
    assert (item.queue, item.code, item.record_key) == (
        "mapping",
        "EXPENSE_CATEGORY_UNMAPPED",
        "psa:expense:2",
    )
    assert "Gadgets" in item.message


def test_an_expense_the_erp_already_holds_is_linked_as_posted_and_never_sent_again(firm):
    target_records_upsert(
        connection=firm["erp"],
        record_type="expenseReport",
        known={"KT-EX-1": "555"},
        source=TargetRecord.Source.PULLED,
    )
    # In a period closed since: posted history is not judged again.
    counts = process(firm, [expense(1, date="2026-09-15")])
    e = Expense.objects.get()
    assert e.status == "posted"
    assert (
        ExternalRef.objects.get(
            system="erp", content_type=ContentType.objects.get_for_model(Expense)
        ).external_id
        == "555"
    )
    assert (counts.created, counts.linked, counts.deliveries) == (1, 1, 0)
    assert not Delivery.objects.exists()
    assert not ExceptionItem.objects.exists()


def test_the_erps_confirmation_marks_the_expense_posted_with_its_report_id(firm):
    process(firm, [expense(1)])
    confirm(Delivery.objects.get(), target_id="901")
    e = Expense.objects.get()
    assert e.status == "posted"
    expense_type = ContentType.objects.get_for_model(Expense)
    assert (
        ExternalRef.objects.get(
            object_id=str(e.pk), system="erp", content_type=expense_type
        ).external_id
        == "901"
    )
    assert e.history.latest().history_actor == "system:outbox"


def test_a_rejection_after_posting_voids_the_same_erp_report_once(firm):
    process(firm, [expense(1)])
    confirm(Delivery.objects.get())
    counts = process(firm, [expense(1, approved=False, approval_status="rejected")])
    again = replay_all(firm)

    e = Expense.objects.get()
    assert e.status == "reversed"
    assert counts.updated == 1
    assert again.updated == 0
    void = Delivery.objects.get(record_version=e.version)
    assert void.external_id == "KT-EX-1"  # the same ERP report, upserted as Rejected
    assert void.payload["body"]["approvalStatus"] == {"id": "3"}
    assert Delivery.objects.count() == 2
    confirm(void)
    e.refresh_from_db()
    assert e.status == "reversed"  # the void's confirmation changes no status


def test_a_rejection_before_posting_rejects_the_expense_and_voids_whatever_reached_the_erp(firm):
    process(firm, [expense(1)])
    process(firm, [expense(1, approved=False, approval_status="rejected")])
    e = Expense.objects.get()
    assert e.status == "rejected"
    first, void = Delivery.objects.order_by("record_version")
    assert void.payload["body"]["approvalStatus"] == {"id": "3"}
    assert first.next_attempt_at <= void.next_attempt_at  # the first is sent before the void
    confirm(first)
    e.refresh_from_db()
    assert e.status == "rejected"  # an older version's confirmation changes nothing


def test_an_expense_approved_again_after_its_rejection_is_parked_not_reposted(firm):
    process(firm, [expense(1)])
    process(firm, [expense(1, approved=False, approval_status="rejected")])
    process(firm, [expense(1, amount_in_cents=20_000)])
    item = ExceptionItem.objects.get()
    assert (item.code, item.queue) == ("EXPENSE_APPROVED_AGAIN", "time_and_expense")
    assert Delivery.objects.count() == 2


def test_a_change_to_a_posted_expense_is_parked_and_the_record_kept(firm):
    process(firm, [expense(1)])
    confirm(Delivery.objects.get())
    process(firm, [expense(1, amount_in_cents=20_000)])
    item = ExceptionItem.objects.get()
    assert (item.code, item.money_at_risk) == ("POSTED_EXPENSE_CHANGED", Decimal("200.00"))
    assert Expense.objects.get().amount == Decimal("189.50")
    assert Delivery.objects.count() == 1


def test_a_change_before_posting_upserts_the_same_report_again_as_a_new_version(firm):
    process(firm, [expense(1)])
    process(firm, [expense(1, amount_in_cents=20_000)])
    e = Expense.objects.get()
    assert (e.version, e.amount) == (2, Decimal("200.00"))
    assert set(Delivery.objects.values_list("external_id", "record_version")) == {
        ("KT-EX-1", 1),
        ("KT-EX-1", 2),
    }


def test_an_unreadable_expense_is_parked_for_integration_ops_and_the_rest_posts(firm):
    process(firm, [expense(1, amount_in_cents=189.5), expense(2)])
    item = ExceptionItem.objects.get()
    assert (item.code, item.queue) == ("MALFORMED_PAYLOAD", "integration_ops")
    assert "amount_in_cents" in item.message
    assert Expense.objects.get().psa_id == "2"


def test_erp_expense_reports_are_recorded_by_key_once(firm):
    rows = [
        ("10", {"id": "10", "externalid": "KT-EX-1"}),
        ("11", {"id": "11", "externalid": None}),  # entered in the ERP itself: not ours
    ]
    stored = inbox_store(system="erp", entity="expenseReport", records=rows)
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    counts = expense_reports_process(inbox_ids=[i.id for i in stored.new], run=run)
    InboxItem.objects.update(status="pending")
    again = expense_reports_process(
        inbox_ids=[i.id for i in stored.new],
        run=SyncRun.objects.create(kind="replay", started_at=timezone.now()),
    )
    assert (counts.created, again.created, again.unchanged) == (1, 0, 2)
    (record,) = TargetRecord.objects.filter(record_type="expenseReport")
    assert (record.external_id, record.target_id) == ("KT-EX-1", "10")


def test_the_cycle_runs_erp_reports_before_psa_expenses_and_expenses_only_with_an_erp(firm):
    _, order = processing_registry(erp=firm["erp"])
    assert order.index(("erp", "expenseReport")) < order.index(("psa", "expenses"))
    _, without_erp = processing_registry(erp=None)
    assert ("psa", "expenses") not in without_erp
