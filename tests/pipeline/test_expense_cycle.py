"""A cycle against the in-process sandbox takes approved PSA expenses to ERP expense reports
once: the ERP's own listing (by externalId) holds one report per expense, also after a second
cycle, and a report the ERP held before Ledgerbridge is linked, not doubled."""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import partial

import httpx
import pytest
from django.contrib.contenttypes.models import ContentType

from sandbox import storage
from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.kantata import views as kantata_views
from sandbox.models import SandboxRecord
from sandbox.netsuite import views as netsuite_views
from sync.integrations import registry
from sync.integrations.kantata.client import KantataConnector
from sync.mappings.services import (
    mapping_entry_set,
    mapping_set_create,
    mapping_version_create_draft,
    mapping_version_publish,
    mapping_version_submit,
)
from sync.models import AccountingPeriod, Currency, Expense, ExternalRef
from sync.pipeline.cycle import sync_cycle_run
from sync.pipeline.expense_posting.processors import expense_processors
from sync.pipeline.models import Connection, ExceptionItem
from tests import factories as f
from tests.pipeline.test_cycle import ledger_build

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])


@pytest.fixture
def sandbox() -> SandboxApp:
    return SandboxApp(faults=FaultBook(seed=3), manage_connections=False, sleep=lambda s: None)


@pytest.fixture
def transport_for(sandbox):
    return lambda connection: httpx.WSGITransport(app=sandbox)


@pytest.fixture
def psa() -> Connection:
    conn = Connection(
        name="kantata",
        system="psa",
        dialect="kantata",
        base_url="http://sandbox.test/kantata/api/v1",
        max_concurrency=1,
    )
    conn.credentials_set({"access_token": kantata_views.ACCESS_TOKEN})
    conn.save()
    return conn


@pytest.fixture
def erp() -> Connection:
    conn = Connection(
        name="netsuite",
        system="erp",
        dialect="netsuite",
        base_url="http://sandbox.test/netsuite",
        max_concurrency=1,
    )
    conn.credentials_set(
        {"client_id": netsuite_views.CLIENT_ID, "client_secret": netsuite_views.CLIENT_SECRET}
    )
    conn.save()
    return conn


@pytest.fixture
def firm(sandbox, django_user_model):
    """The ERP ledger (sandbox), the PSA workspace and user, and the canonical records that
    link them, with the legal-entity mapping published."""
    ledger = ledger_build(sandbox)
    workspace = storage.record_create(
        system="kantata", object_type="workspaces", data={"title": "Rollout"}
    )
    user = storage.record_create(system="kantata", object_type="users", data={"full_name": "Ada"})
    uk = f.LegalEntityFactory(code="UK01", functional_currency=f.currency("GBP"))
    gbp = Currency.objects.get(code="GBP")
    customer = f.CustomerFactory(legal_entity=uk, status="approved", name="Acme Ltd")
    project = f.ProjectFactory(customer=customer, legal_entity=uk, currency=gbp, code="P-100")
    cost_centre = f.CostCentreFactory(legal_entity=uk)
    worker = f.WorkerFactory(legal_entity=uk, cost_centre=cost_centre)
    for system, record, external_id in [
        ("psa", project, workspace.pk),
        ("psa", worker, user.pk),
        ("erp", project, ledger["job"]),
        ("erp", worker, ledger["employee"]),
        ("erp", cost_centre, ledger["dept"]),
        ("erp", gbp, ledger["gbp"]),
    ]:
        ExternalRef.objects.create(
            system=system,
            content_type=ContentType.objects.get_for_model(record),
            object_id=str(record.pk),
            external_id=str(external_id),
        )
    AccountingPeriod.objects.create(
        legal_entity=uk,
        start_date=dt.date(2026, 10, 1),
        end_date=dt.date(2026, 10, 31),
        status="open",
    )
    admin = django_user_model.objects.create_user("mapper")
    mapping_set = mapping_set_create(
        slug="legal-entity", name="Legal entity → subsidiary", kind="legal_entity", user=admin
    )
    draft = mapping_version_create_draft(mapping_set=mapping_set, user=admin)
    mapping_entry_set(version=draft, source_value="UK01", target_value=ledger["uk"], user=admin)
    mapping_version_submit(version=draft, user=admin)
    mapping_version_publish(version=draft, effective_from=dt.date(2026, 1, 1), user=None)
    return {"ledger": ledger, "workspace": workspace, "user": user}


def psa_expense(firm, cents: int = 18_950, status: str = "approved") -> SandboxRecord:
    return storage.record_create(
        system="kantata",
        object_type="expenses",
        parent_id=firm["workspace"].pk,
        status=status,
        data={
            "date": "2026-10-14",
            "category": "Hotel",
            "amount_in_cents": cents,
            "currency": "GBP",
            "billable": True,
            "user_id": str(firm["user"].pk),
            "approval_status": status,
        },
    )


def erp_report_held_before(firm, expense: SandboxRecord) -> SandboxRecord:
    """An expense report the ERP holds under the expense's key from before Ledgerbridge."""
    ledger = firm["ledger"]
    return storage.record_create(
        system="netsuite",
        object_type="expenseReport",
        external_id=f"KT-EX-{expense.pk}",
        parent_id=int(ledger["employee"]),
        status="2",
        data={
            "entity": ledger["employee"],
            "tranDate": "2026-10-02",
            "subsidiary": ledger["uk"],
            "department": ledger["dept"],
            "approvalStatus": "2",
            "total": 42,
            "expense": [{"line": 1, "amount": 42, "customer": ledger["job"]}],
        },
    )


def erp_reports() -> dict[str, list[SandboxRecord]]:
    """The ERP's expense reports by externalId (the vendor's own records, not ours)."""
    found: dict[str, list[SandboxRecord]] = {}
    for record in SandboxRecord.objects.filter(
        system="netsuite", object_type="expenseReport", deleted=False
    ):
        found.setdefault(record.external_id, []).append(record)
    return found


def expense_cycle(erp, transport_for):
    processors = dict(expense_processors(erp=erp))
    return sync_cycle_run(
        transport_for=transport_for, processors=processors, order=list(processors)
    )


def test_a_cycle_posts_each_approved_expense_once_and_links_what_the_erp_held(
    psa, erp, firm, transport_for
):
    new, old = psa_expense(firm), psa_expense(firm, cents=4_200)
    held = erp_report_held_before(firm, old)

    first = expense_cycle(erp, transport_for)
    second = expense_cycle(erp, transport_for)

    assert first.status == "succeeded", first.error
    assert not ExceptionItem.objects.exists()
    reports = erp_reports()
    assert {key: len(rows) for key, rows in reports.items()} == {
        f"KT-EX-{new.pk}": 1,
        f"KT-EX-{old.pk}": 1,
    }
    (report,) = reports[f"KT-EX-{new.pk}"]
    assert report.data["total"] == 189.5
    assert report.data["expense"][0]["customer"] == firm["ledger"]["job"]
    assert reports[f"KT-EX-{old.pk}"][0].data == held.data  # linked, not written again
    assert first.delivered == 1
    assert (second.created, second.delivered, second.failed) == (0, 0, 0)
    statuses = dict(Expense.objects.values_list("psa_id", "status"))
    assert statuses == {str(new.pk): "posted", str(old.pk): "posted"}


def test_a_rejection_after_posting_leaves_the_one_report_rejected_in_the_erp(
    psa, erp, firm, transport_for, monkeypatch
):
    # The PSA's expenses read whatever their approval (the default pull reads approved ones).
    kantata = registry.INTEGRATIONS["kantata"]
    monkeypatch.setitem(
        registry.INTEGRATIONS,
        "kantata",
        dataclasses.replace(kantata, source=partial(KantataConnector, approved_only=False)),
    )
    expense = psa_expense(firm)
    expense_cycle(erp, transport_for)
    storage.record_update(
        record=expense,
        changes={"approval_status": "rejected"},
        status="unapproved",
        action="rejected",
    )
    expense_cycle(erp, transport_for)
    third = expense_cycle(erp, transport_for)

    (report,) = erp_reports()[f"KT-EX-{expense.pk}"]
    assert report.data["approvalStatus"] == "3"  # Rejected: no ledger impact, audit kept
    assert Expense.objects.get().status == "reversed"
    assert (third.created, third.updated, third.delivered) == (0, 0, 0)
