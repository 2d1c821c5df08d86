"""Customer onboarding and the project's wait for its customer, through the processing protocol
on SQLite: CRM payloads in the inbox, the outbox rows and exception items they leave."""

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
from sync.models import Customer, ExternalRef, Opportunity, Project
from sync.pipeline.inbox import inbox_store
from sync.pipeline.models import Connection, Delivery, ExceptionItem, InboxItem, SyncRun
from sync.pipeline.processing import batch_process
from sync.pipeline.quote_to_cash.advance import projects_waiting_count, quote_to_cash_advance
from sync.pipeline.quote_to_cash.customers import account_flow, opportunity_flow
from tests import factories as f

pytestmark = pytest.mark.django_db

ACCOUNT_ID = "001000000000000042"
DEAL_ID = "006000000000000042"


def ref(system: str, record, external_id: str) -> None:
    ExternalRef.objects.create(
        system=system,
        content_type=ContentType.objects.get_for_model(record),
        object_id=str(record.pk),
        external_id=external_id,
    )


@pytest.fixture
def books(erp_connection):
    gbp = f.CurrencyFactory(code="GBP")
    ref("erp", gbp, "1")
    uk = f.LegalEntityFactory(code="LB-GB", functional_currency=gbp, country="GB")
    mapping_set = mapping_set_create(
        slug="legal-entity", name="Legal entity → subsidiary", kind="legal_entity", user=None
    )
    draft = mapping_version_create_draft(mapping_set=mapping_set, user=None)
    mapping_entry_set(version=draft, source_value="LB-GB", target_value="3", user=None)
    mapping_version_submit(version=draft, user=None)
    mapping_version_publish(version=draft, effective_from=dt.date(2000, 1, 1), user=None)
    for system, dialect in (("crm", "salesforce"), ("billing", "stripe"), ("psa", "kantata")):
        Connection.objects.create(
            name=dialect, system=system, dialect=dialect, base_url=f"http://127.0.0.1:9/{dialect}"
        )
    return {"entity": uk, "gbp": gbp}


def account(**fields) -> dict:
    return {
        "Id": ACCOUNT_ID,
        "Name": "Acme Holdings Ltd.",
        "AccountNumber": "C-00042",
        "BillingCountry": "GB",
        "CurrencyIsoCode": "GBP",
        "Tax_Registration__c": "GB123456789",
        "Credit_Status__c": "Approved",
        **fields,
    }


def deal(**fields) -> dict:
    return {
        "Id": DEAL_ID,
        "AccountId": ACCOUNT_ID,
        "Name": "Acme data platform",
        "StageName": "Closed Won",
        "IsWon": True,
        "CloseDate": "2026-11-20",
        "Amount": 180000.5,
        "CurrencyIsoCode": "GBP",
        "Billing_Model__c": "Time and Materials",
        "Legal_Entity__c": "LB-GB",
        **fields,
    }


def run() -> SyncRun:
    return SyncRun.objects.create(kind="cycle", started_at=timezone.now())


def process(flow, entity: str, *payloads: dict):
    stored = inbox_store(system="crm", entity=entity, records=[(p["Id"], p) for p in payloads]).new
    return batch_process(flow=flow, inbox_ids=[i.id for i in stored], run=run())


def test_a_won_deal_of_a_new_account_becomes_one_pending_customer_with_one_erp_delivery(books):
    process(account_flow, "Account", account())
    counts = process(opportunity_flow, "Opportunity", deal())

    customer = Customer.objects.get()
    assert (customer.name, customer.tax_id, customer.status) == (
        "Acme Holdings Ltd.",
        "GB123456789",
        Customer.Status.PENDING_APPROVAL,
    )
    won = Opportunity.objects.get()
    assert (won.amount, won.currency_id, won.customer) == (Decimal("180000.50"), "GBP", customer)
    (delivery,) = Delivery.objects.all()
    assert delivery.operation == "erp.customer.upsert"
    assert delivery.external_id == "C-00042"  # the account number the ERP's customers carry
    assert delivery.payload["body"]["subsidiary"] == {"id": "3"}
    assert delivery.correlation_id == won.correlation_id == customer.correlation_id != ""
    assert counts.deliveries == 1

    # The same deal again (its amount changed): no second customer, no second ERP customer.
    process(opportunity_flow, "Opportunity", deal(Amount=190000))
    assert Customer.objects.count() == 1
    assert Delivery.objects.count() == 1
    assert Opportunity.objects.get().amount == Decimal("190000.00")


def test_an_open_deal_is_read_and_left_alone(books):
    process(account_flow, "Account", account())
    process(opportunity_flow, "Opportunity", deal(StageName="Negotiation", IsWon=False))

    assert not Customer.objects.exists()
    assert not Delivery.objects.exists()
    assert InboxItem.objects.filter(entity="Opportunity", status="processed").count() == 1


def test_a_suspected_duplicate_is_an_exception_item_and_never_a_second_customer(books):
    known = f.CustomerFactory(
        name="ACME HOLDINGS LTD", tax_id="GB 123 456 789", legal_entity=books["entity"]
    )
    process(account_flow, "Account", account(AccountNumber=None))
    process(opportunity_flow, "Opportunity", deal())

    assert list(Customer.objects.all()) == [known]
    assert not Delivery.objects.exists()
    item = ExceptionItem.objects.get()
    assert (item.code, item.queue, item.status) == (
        "DUPLICATE_SUSPECTED",
        "customer_master",
        "open",
    )
    assert item.detail["duplicates"] == [known.pk]
    assert (item.money_at_risk, item.currency) == (Decimal("180000.50"), "GBP")
    assert InboxItem.objects.get(entity="Opportunity").status == "parked"


def test_a_deal_without_tax_registration_waits_until_the_account_is_fixed_in_the_crm(books):
    process(account_flow, "Account", account(Tax_Registration__c=None))
    process(opportunity_flow, "Opportunity", deal())

    assert not Customer.objects.exists()
    item = ExceptionItem.objects.get()
    assert (item.code, item.queue) == ("TAX_REGISTRATION_MISSING", "customer_master")

    # A sales rep enters it: the account's change re-offers the parked deal, which passes.
    process(account_flow, "Account", account(Tax_Registration__c="GB123456789"))
    parked = InboxItem.objects.filter(entity="Opportunity", status="pending")
    assert parked.count() == 1
    batch_process(
        flow=opportunity_flow, inbox_ids=list(parked.values_list("id", flat=True)), run=run()
    )

    assert Customer.objects.get().tax_id == "GB123456789"
    item.refresh_from_db()
    assert item.status != "open"


def test_a_deal_with_refused_credit_is_not_onboarded(books):
    process(account_flow, "Account", account(Credit_Status__c="Rejected"))
    process(opportunity_flow, "Opportunity", deal())

    assert not Customer.objects.exists()
    assert ExceptionItem.objects.get().code == "CREDIT_BLOCKED"


def test_a_deal_of_an_account_linked_to_an_erp_customer_reuses_it_and_creates_nothing(books):
    known = f.CustomerFactory(name="Acme Holdings Ltd.", legal_entity=books["entity"])
    ref("erp", known, "812")
    process(account_flow, "Account", account(ERP_Customer_Id__c="812"))
    process(opportunity_flow, "Opportunity", deal())

    assert list(Customer.objects.all()) == [known]
    assert Opportunity.objects.get().customer == known
    assert ExternalRef.objects.filter(system="crm", external_id=ACCOUNT_ID).exists()
    assert not Delivery.objects.exists()


def project_waiting(customer: Customer) -> Project:
    contract = f.ContractFactory(
        customer=customer, currency=customer.legal_entity.functional_currency
    )
    return f.ProjectFactory(
        customer=customer,
        contract=contract,
        legal_entity=customer.legal_entity,
        currency=contract.currency,
        status=Project.Status.DRAFT,
        correlation_id="deal-42",
    )


def test_a_project_waits_in_draft_until_the_erp_accepts_its_customer(books):
    process(account_flow, "Account", account())
    process(opportunity_flow, "Opportunity", deal())
    customer = Customer.objects.get()
    project = project_waiting(customer)

    quote_to_cash_advance(run=run())

    project.refresh_from_db()
    assert project.status == Project.Status.DRAFT
    assert projects_waiting_count() == 1
    assert not Delivery.objects.filter(operation="erp.job.upsert").exists()

    # The ERP accepts the customer (its delivery is confirmed with the ERP's internal id).
    Delivery.objects.filter(operation="erp.customer.upsert").update(
        state="delivered", target_id="9001"
    )
    done = quote_to_cash_advance(run=run())

    customer.refresh_from_db()
    project.refresh_from_db()
    assert customer.status == Customer.Status.APPROVED
    assert project.status == Project.Status.PROVISIONING
    assert projects_waiting_count() == 0
    job = Delivery.objects.get(operation="erp.job.upsert")
    assert job.payload["body"]["parent"] == {"id": "9001"}
    assert job.external_id == project.code
    link = Delivery.objects.get(operation="crm.account.link")
    assert (link.external_id, link.payload["body"]) == (
        ACCOUNT_ID,
        {"ERP_Customer_Id__c": "9001"},
    )
    assert Delivery.objects.filter(operation="billing.customer.create").count() == 1
    assert done["deliveries"] == 3

    # Advancing again enqueues nothing new.
    assert quote_to_cash_advance(run=run()).get("deliveries", 0) == 0
