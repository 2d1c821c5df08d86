"""Customer onboarding and project provisioning through whole cycles, in-process on SQLite:
a seeded demo firm, the sandbox systems answering through a WSGI transport."""

from __future__ import annotations

import datetime as dt
import io

import httpx
import pytest
from django.core.management import call_command

from sandbox import storage
from sandbox.core.app import SandboxApp
from sandbox.core.faults import FaultBook
from sandbox.salesforce.schema import ACCOUNT, OPPORTUNITY, sf_id
from sync.mappings.ownership_services import ownership_rule_set
from sync.models import Customer, ExternalRef, Opportunity, Project
from sync.pipeline.cycle import sync_cycle_run
from sync.pipeline.models import Connection, Delivery, ExceptionItem

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

V = "/salesforce/services/data/v60.0"


@pytest.fixture
def sandbox() -> SandboxApp:
    return SandboxApp(faults=FaultBook(seed=3), manage_connections=False, sleep=lambda s: None)


@pytest.fixture
def firm(tmp_path, sandbox):
    call_command(
        "sandbox", "seed", "--scale", "200", "--seed", "7", "--reset",
        "--manifest", str(tmp_path / "manifest.json"), stdout=io.StringIO(),
    )  # fmt: skip
    call_command("sandbox", "connect", "--base-url", "http://sandbox.test", stdout=io.StringIO())
    for connection in Connection.objects.all():
        connection.max_concurrency = 1
        connection.save()
    return sandbox


def cycle(sandbox):
    return sync_cycle_run(transport_for=lambda c: httpx.WSGITransport(app=sandbox))


def sandbox_count(system: str, object_type: str) -> int:
    return storage.record_queryset(system=system, object_type=object_type).count()


def prospect_deal() -> tuple[str, str]:
    """An open deal of an account the ERP does not know, with a tax registration, approved
    credit and a mapped legal entity: (opportunity Id, account Id)."""
    for deal in storage.record_queryset(system="salesforce", object_type="Opportunity").exclude(
        status__in=["Closed Won", "Closed Lost"]
    ):
        account = storage.record_get(
            system="salesforce", object_type="Account", record_id=deal.parent_id
        )
        data = account.data
        if (
            not data.get("ERP_Customer_Id__c")
            and data.get("Tax_Registration__c")
            and data.get("Credit_Status__c") == "Approved"
            and deal.data.get("Legal_Entity__c") != "LB-NL"
            and data.get("AccountNumber")
        ):
            return sf_id(OPPORTUNITY, deal.pk), sf_id(ACCOUNT, account.pk)
    raise LookupError("the seeded firm has no such deal")


def deal_close(http: httpx.Client, *, deal: str, account: str) -> None:
    """Close the deal as a salesperson would, through the CRM's REST API, with its SOW.
    `http`: a client whose base URL serves the sandbox."""
    token = http.post(
        "/salesforce/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-salesforce-client-id",
            "client_secret": "sandbox-salesforce-client-secret",
        },
    ).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    answer = http.patch(f"{V}/sobjects/Opportunity/{deal}", json={"StageName": "Closed Won"})
    assert answer.status_code == 204, answer.text
    currency = http.get(f"{V}/sobjects/Opportunity/{deal}").json()["CurrencyIsoCode"]
    answer = http.post(
        f"{V}/sobjects/Contract/",  # as simple-salesforce's create sends it
        json={
            "AccountId": account,
            "Opportunity__c": deal,
            "Status": "Activated",
            "StartDate": "2026-12-01",
            "EndDate": "2027-05-31",
            "Billing_Model__c": "Time and Materials",
            "Contract_Value__c": 120000.5,
            "CurrencyIsoCode": currency,
            "SOW_Number__c": "SOW-900001",
        },
    )
    assert answer.status_code == 201, answer.text


def sandbox_counts() -> dict[tuple[str, str], int]:
    kinds = [("netsuite", "customer"), ("netsuite", "job"), ("netsuite", "projectTask"),
             ("kantata", "workspaces"), ("kantata", "stories"), ("stripe", "customer")]  # fmt: skip
    return {kind: sandbox_count(*kind) for kind in kinds}


def onboarded_check(*, before: dict, account: str) -> Opportunity:
    """Exactly one ERP customer linked back in the CRM account, one job under it with its WBS,
    one workspace pointing at the job, one billing customer, and nothing more. Returns the
    won opportunity."""
    after = sandbox_counts()
    assert {kind: after[kind] - before[kind] for kind in before} == {
        ("netsuite", "customer"): 1,
        ("netsuite", "job"): 1,
        ("kantata", "workspaces"): 1,
        ("stripe", "customer"): 1,
        ("netsuite", "projectTask"): 3,  # the T&M template's WBS
        ("kantata", "stories"): 3,  # the same WBS in the PSA
    }
    crm_account = storage.record_get(
        system="salesforce", object_type="Account", record_id=int(account[3:])
    )
    erp_customer = storage.record_get(
        system="netsuite",
        object_type="customer",
        record_id=int(crm_account.data["ERP_Customer_Id__c"]),
    )
    job = storage.record_queryset(system="netsuite", object_type="job").get(external_id="P-900001")
    assert job.data["parent"] == str(erp_customer.pk)
    workspace = storage.record_queryset(system="kantata", object_type="workspaces").get(
        external_id=job.external_id
    )
    assert workspace.data["title"] == job.data["companyName"]
    stories = storage.record_queryset(system="kantata", object_type="stories").filter(
        parent_id=workspace.pk
    )
    erp_tasks = storage.record_queryset(system="netsuite", object_type="projectTask").filter(
        parent_id=job.pk
    )
    # Each system can find the other's WBS element: story external_reference = task externalId.
    assert sorted(s.data["external_reference"] for s in stories) == sorted(
        t.external_id for t in erp_tasks
    )
    phase = stories.get(data__external_reference="P-900001.1")
    assert {s.data.get("parent_id") for s in stories if s.pk != phase.pk} == {str(phase.pk)}
    project = Project.objects.get(code="P-900001")
    assert project.status == Project.Status.OPEN
    assert project.customer.status == Customer.Status.APPROVED
    return Opportunity.objects.get(name=job.data["companyName"])


@pytest.fixture(params=["erp", "psa"])
def project_master(request) -> str:
    """The operating model: which system owns the project master (the ERP by default)."""
    if request.param == "psa":
        for entity in ("project", "task"):
            ownership_rule_set(
                entity=entity, owner_system="psa", effective_from=dt.date(2000, 1, 1), user=None
            )
    return request.param


def test_a_deal_closed_in_the_crm_becomes_one_customer_one_job_and_one_workspace(
    firm, project_master
):
    cycle(firm)
    deal, account = prospect_deal()
    before = sandbox_counts()
    with httpx.Client(transport=httpx.WSGITransport(app=firm), base_url="http://sb") as http:
        deal_close(http, deal=deal, account=account)

    cycle(firm)
    cycle(firm)

    won = onboarded_check(before=before, account=account)
    # One correlation id from the deal to the workspace.
    traced = Delivery.objects.filter(correlation_id=won.correlation_id)
    assert set(traced.values_list("operation", flat=True)) == {
        "erp.customer.upsert",
        "crm.account.link",
        "billing.customer.create",
        "erp.job.upsert",
        "erp.project_task.upsert",
        "psa.workspace.upsert",
        "psa.story.upsert",
    }
    assert not traced.exclude(state="delivered").exists()
    job_sent = traced.get(operation="erp.job.upsert")
    workspace_sent = traced.get(operation="psa.workspace.upsert")
    if project_master == "erp":  # the master first: the workspace once the job exists
        assert workspace_sent.created_at >= job_sent.delivered_at
    else:  # the PSA is the master: its workspace goes out with the job
        assert workspace_sent.created_at <= job_sent.delivered_at
    assert not ExceptionItem.objects.filter(correlation_id=won.correlation_id).exists()


def test_a_cycle_after_onboarding_sends_nothing_new(firm):
    cycle(firm)
    deliveries = Delivery.objects.count()
    refs = ExternalRef.objects.count()

    run = cycle(firm)

    assert Delivery.objects.count() == deliveries
    assert ExternalRef.objects.count() == refs
    assert run.status == "succeeded", run.error
