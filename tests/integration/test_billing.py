"""Billing on real PostgreSQL against the served sandbox: on a seeded T&M project, the months
billing billed before Ledgerbridge are linked, never billed again, and the planted unbilled
month becomes one invoice in billing and one in the ERP, counted through Stripe's and NetSuite's
own APIs, after more cycles, a replay of every delivery and answers dropped after billing
committed the invoice."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sandbox.generator.seed import sandbox_seed
from sandbox.product_setup import connections_from_sandbox, legal_entity_mapping_from_sandbox
from sync.integrations.registry import target_connector_for
from sync.models import Contract, Customer, ExternalRef, Invoice, InvoiceCandidate, Project
from sync.models.transactions import ApprovalStatus
from sync.pipeline.cycle import sync_cycle_run
from sync.pipeline.delivery import deliveries_send_due
from sync.pipeline.models import Connection, Delivery, TargetRecord

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, databases=["default", "sandbox"]),
]

ISSUE = "billing.invoice.issue"
ERP_INVOICE = "erp.invoice.upsert"


@pytest.fixture
def firm(served_sandbox) -> dict:
    """A small seeded firm in the served sandbox, Ledgerbridge connected to it, one cycle run
    (master data in, time posted)."""
    manifest = sandbox_seed(seed=42, time_entries=300, reset=True).manifest
    connections_from_sandbox(base_url=served_sandbox.base_url)
    legal_entity_mapping_from_sandbox()
    first = sync_cycle_run()
    assert first.status == "succeeded", first.error
    return {
        "manifest": manifest,
        "erp": Connection.objects.get(system="erp"),
        "billing": Connection.objects.get(system="billing"),
    }


def unbilled_months(manifest: dict) -> dict[str, set[str]]:
    """The planted months of approved T&M time billing never billed, by project code."""
    months: dict[str, set[str]] = {}
    for fault in manifest["faults"]:
        if fault["kind"] == "unbilled_approved_time":
            detail = fault["detail"]
            months.setdefault(detail["project_key"], set()).add(detail["period"])
    return months


def billed_project(billing: Connection, codes: set[str]) -> Project:
    """An open project of `codes` with posted billable time, put on a time and materials
    contract (the seed's CRM contracts are not synced here), its customer in billing (as
    onboarding leaves it: a Stripe customer and a billing ref) and in the ERP (seeded)."""
    erp_linked = ExternalRef.objects.filter(
        system="erp", content_type=ContentType.objects.get_for_model(Customer)
    ).values_list("object_id", flat=True)
    project = (
        Project.objects.filter(
            code__in=codes,
            status=Project.Status.OPEN,
            customer_id__in=[int(pk) for pk in erp_linked],
            time_entries__status=ApprovalStatus.POSTED,
            time_entries__billable=True,
        )
        .order_by("id")
        .first()
    )
    assert project is not None, "the seed plants an unbilled month on an open project"
    project.contract = Contract.objects.create(
        customer=project.customer,
        name=f"SOW {project.code}",
        billing_model=Contract.BillingModel.TIME_AND_MATERIALS,
        currency=project.currency,
        value="0.00",
        start_date=dt.date(2020, 1, 1),
        status=Contract.Status.ACTIVE,
    )
    project.save()
    connector = target_connector_for(billing)
    try:
        stripe_id = connector.upsert_by_external_id(
            record_type="customers",
            external_id=f"LB-CUST-{project.customer_id}",
            body={"name": project.customer.name},
            idempotency_key=f"test-customer-{project.customer_id}",
        )
    finally:
        connector.close()
    ExternalRef.objects.create(
        system="billing",
        content_type=ContentType.objects.get_for_model(Customer),
        object_id=str(project.customer_id),
        external_id=stripe_id,
    )
    return project


def billing_invoices(billing: Connection) -> Counter[str]:
    """Stripe's invoices by our key (metadata[ledgerbridge_id]), listed through its API."""
    connector = target_connector_for(billing)
    try:
        keys: Counter[str] = Counter()
        for page in connector.pull(entity="invoices"):
            for invoice in page.records:
                key = (invoice.get("metadata") or {}).get("ledgerbridge_id")
                if key:
                    keys[f"{key}:{invoice['status']}"] += 1
        return keys
    finally:
        connector.close()


def erp_invoices(erp: Connection, numbers: list[str]) -> Counter[str]:
    """How many ERP invoices carry each of `numbers` as externalId, asked through SuiteQL."""
    connector = target_connector_for(erp)
    try:
        return Counter(
            row.get("externalid")
            for page in connector.suiteql("SELECT id, externalid FROM invoice ORDER BY id")
            for row in page.records
            if row.get("externalid") in numbers
        )
    finally:
        connector.close()


def test_posted_time_is_billed_once_in_billing_and_the_erp_through_faults_and_replays(
    firm, served_sandbox
):
    erp, billing = firm["erp"], firm["billing"]
    planted = unbilled_months(firm["manifest"])
    project = billed_project(billing, set(planted))

    # Billing commits each invoice but its answers are lost: the retry replays under its keys.
    served_sandbox.app.faults.configure(system="stripe", changes={"drop_rate": 1.0})
    sync_cycle_run()
    served_sandbox.app.faults.reset(seed=7)
    assert served_sandbox.app.dropped
    assert Delivery.objects.filter(operation=ISSUE).exists()
    assert not Delivery.objects.filter(operation=ISSUE, state="delivered").exists()
    Delivery.objects.filter(operation=ISSUE).update(next_attempt_at=timezone.now())
    sync_cycle_run()  # sends the billing invoices
    sync_cycle_run()  # reads their numbers back, posts the ERP invoices

    candidates = InvoiceCandidate.objects.filter(project=project)
    assert set(candidates.values_list("status", flat=True)) == {"invoiced"}
    issued = Delivery.objects.filter(operation=ISSUE).values_list("object_id", flat=True)
    sent = candidates.filter(pk__in=[int(pk) for pk in issued])
    # The planted months are billed (and a month completed since the seed's last invoice run,
    # if any); none that billing billed before, whose work is linked instead.
    history = {
        key.split("/", 1)[1]
        for key in TargetRecord.objects.filter(
            record_type="billedPeriod", external_id__startswith=f"{project.code}/"
        ).values_list("external_id", flat=True)
    }
    sent_months = {f"{c.period_start:%Y-%m}" for c in sent}
    assert planted[project.code] <= sent_months
    assert history
    assert not sent_months & history
    linked = {f"{c.period_start:%Y-%m}" for c in candidates.exclude(pk__in=sent)}
    assert linked <= history
    keys = {f"LB-IC-{c.pk}:open": 1 for c in sent}
    assert billing_invoices(billing) == keys  # one finalized invoice per candidate, no drafts
    numbers = list(Invoice.objects.values_list("number", flat=True))
    assert len(numbers) == sent.count()
    assert None not in numbers
    assert erp_invoices(erp, numbers) == dict.fromkeys(numbers, 1)

    # Every delivery replayed from the start, then another cycle: nothing new anywhere.
    Delivery.objects.filter(operation__in=[ISSUE, ERP_INVOICE]).update(
        state=Delivery.State.PENDING, next_attempt_at=timezone.now()
    )
    deliveries_send_due(limit=200)
    again = sync_cycle_run()

    assert again.status == "succeeded", again.error
    assert billing_invoices(billing) == keys
    assert erp_invoices(erp, numbers) == dict.fromkeys(numbers, 1)
    assert InvoiceCandidate.objects.filter(project=project).count() == candidates.count()
    assert Invoice.objects.count() == len(numbers)
    billed = project.time_entries.filter(billing_links__isnull=False)
    assert set(billed.values_list("status", flat=True)) == {ApprovalStatus.INVOICED}
