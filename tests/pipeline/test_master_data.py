"""ERP, HR and PSA master data become canonical records with cross-references, or exceptions."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sync.models import (
    AccountingPeriod,
    CostCentre,
    Currency,
    Customer,
    ExternalRef,
    LegalEntity,
    Project,
    RolePlaceholder,
    Task,
    Worker,
)
from sync.pipeline.inbox import inbox_store
from sync.pipeline.master_data import PROCESSORS
from sync.pipeline.master_data_order import PROCESSING_ORDER
from sync.pipeline.models import ExceptionItem, InboxItem, SyncRun, TargetRecord

pytestmark = pytest.mark.django_db
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
COSTING = "urn:ledgerbridge:params:scim:schemas:extension:costing:2.0:User"


def process(system: str, entity: str, payloads: list[dict]):
    stored = inbox_store(
        system=system,
        entity=entity,
        records=[
            (str(p.get("id", n)) if isinstance(p, dict) else str(n), p)
            for n, p in enumerate(payloads)
        ],
    )
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    return PROCESSORS[system, entity](inbox_ids=[i.id for i in stored.new], run=run)


def ref_of(system: str, record) -> str | None:
    return (
        ExternalRef.objects.filter(
            system=system,
            content_type=ContentType.objects.get_for_model(record),
            object_id=str(record.pk),
        )
        .values_list("external_id", flat=True)
        .first()
    )


def open_items(**filters) -> list[ExceptionItem]:
    return list(ExceptionItem.objects.filter(status="open", **filters).order_by("record_key"))


# --- payloads as the connectors yield them (SuiteQL rows, SCIM Users, Kantata records) -------


def currency(**change) -> dict:
    return {"id": "1", "name": "British Pound", "symbol": "GBP", "isinactive": "F", **change}


def subsidiary(**change) -> dict:
    return {
        "id": "10",
        "externalid": "LB-GB",
        "name": "Ledgerbridge Consulting Ltd",
        "country": "GB",
        "currency": "1",
        "isinactive": "F",
        **change,
    }


def period(n: int = 100, start: str = "10/1/2026", end: str = "10/31/2026", **change) -> dict:
    return {
        "id": str(n),
        "periodname": "Oct 2026",
        "startdate": start,
        "enddate": end,
        "closed": "F",
        "subsidiary": "10",
        "isquarter": "F",
        "isyear": "F",
        **change,
    }


def department(**change) -> dict:
    return {
        "id": "20",
        "externalid": "GB-100",
        "name": "GB-100 Consulting",
        "subsidiary": "10",
        "isinactive": "F",
        **change,
    }


def customer(**change) -> dict:
    return {
        "id": "30",
        "externalid": "C-00001",
        "companyname": "Acme Ltd",
        "subsidiary": "10",
        "currency": "1",
        "isinactive": "F",
        "vatregnumber": "GB123456789",
        **change,
    }


def scim_user(
    n: int = 1, *, manager: int | None = None, cost_centre: str | None = "GB-100", **change
) -> dict:
    enterprise = {
        "employeeNumber": f"E-{n:05d}",
        "organization": "Ledgerbridge Consulting Ltd",
        "division": "LB-GB",
    }
    if cost_centre:
        enterprise["costCenter"] = cost_centre
    if manager:
        enterprise["manager"] = {"value": f"scim-{manager}", "displayName": "Boss"}
    user = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, COSTING],
        "id": f"scim-{n}",
        "externalId": f"E-{n:05d}",
        "userName": f"worker{n}@lb.example",
        "name": {"givenName": "Ada", "familyName": f"Worker{n}", "formatted": f"Ada Worker{n}"},
        "displayName": f"Ada Worker{n}",
        "active": True,
        "emails": [{"value": f"worker{n}@lb.example", "type": "work", "primary": True}],
        ENTERPRISE: enterprise,
        COSTING: {"costRate": {"amount": "85.50", "currency": "GBP"}},
        "meta": {"resourceType": "User", "lastModified": "2026-10-01T10:00:00.000Z"},
    }
    user.update(change)
    return user


def employee(n: int = 1, **change) -> dict:
    return {
        "id": str(40 + n),
        "externalid": f"E-{n:05d}",
        "firstname": "Ada",
        "lastname": f"Worker{n}",
        "email": f"worker{n}@lb.example",
        "subsidiary": "10",
        "department": "20",
        "isinactive": "F",
        **change,
    }


def job(**change) -> dict:
    return {
        "id": "50",
        "externalid": "P-000001",
        "entityid": "P-000001",
        "companyname": "Acme rollout",
        "parent": "30",
        "subsidiary": "10",
        "currency": "1",
        "entitystatus": "2",
        "isinactive": "F",
        **change,
    }


def project_tasks() -> list[dict]:
    return [
        {
            "id": "61",
            "externalid": "P-000001.1.1",
            "title": "Design",
            "company": "50",
            "parent": "60",
            "status": "PROGRESS",
        },
        {
            "id": "60",
            "externalid": "P-000001.1",
            "title": "Phase 1",
            "company": "50",
            "status": "PROGRESS",
        },
        {
            "id": "62",
            "externalid": "P-000001.0.1",
            "title": "Mobilisation",
            "company": "50",
            "status": "COMPLETE",
        },
    ]


def workspace(**change) -> dict:
    return {
        "id": "500",
        "title": "Acme rollout",
        "external_reference": "P-000001",
        "legal_entity": "LB-GB",
        "currency": "GBP",
        **change,
    }


def story(n: int = 600, code: str = "P-000001.1.1", **change) -> dict:
    return {
        "id": str(n),
        "title": "Design",
        "workspace_id": "500",
        "external_reference": code,
        "story_type": "task",
        **change,
    }


def psa_user(n: int = 1, **change) -> dict:
    return {
        "id": str(700 + n),
        "full_name": f"Ada Worker{n}",
        "email_address": f"Worker{n}@LB.example",
        "headline": "Consultant",
        "is_placeholder": False,
        **change,
    }


PLACEHOLDER = {
    "id": "799",
    "full_name": "Senior Consultant (GB)",
    "email_address": None,
    "headline": "Senior Consultant",
    "is_placeholder": True,
}
ASSIGNMENT = {"id": "800", "story_id": "600", "assignee_id": "799", "workspace_id": "500"}


def erp_reference_data() -> None:
    process("erp", "currency", [currency()])
    process("erp", "subsidiary", [subsidiary()])
    process("erp", "accountingPeriod", [period(), period(99, "9/1/2026", "9/30/2026", closed="T")])
    process("erp", "department", [department()])
    process("erp", "customer", [customer()])


def whole_firm() -> None:
    erp_reference_data()
    process("hr", "Users", [scim_user(2, manager=1), scim_user(1)])
    process("erp", "employee", [employee(1), employee(2)])
    process("erp", "job", [job()])
    process("erp", "projectTask", project_tasks())
    process("psa", "workspaces", [workspace()])
    process("psa", "stories", [story()])
    process("psa", "assignments", [ASSIGNMENT])
    process("psa", "users", [psa_user(1), psa_user(2), PLACEHOLDER])


# --- the happy path -------------------------------------------------------------------------


def test_erp_reference_data_becomes_legal_entities_periods_cost_centres_and_customers():
    erp_reference_data()

    entity = LegalEntity.objects.get()
    assert (entity.code, entity.country, entity.functional_currency_id) == ("LB-GB", "GB", "GBP")
    assert ref_of("erp", entity) == "10"
    assert ref_of("erp", Currency.objects.get(code="GBP")) == "1"
    periods = {p.start_date.month: p.status for p in AccountingPeriod.objects.all()}
    assert periods == {9: "closed", 10: "open"}
    centre = CostCentre.objects.get()
    assert (centre.code, centre.legal_entity_id, ref_of("erp", centre)) == (
        "GB-100",
        entity.pk,
        "20",
    )
    acme = Customer.objects.get()
    assert (acme.name, acme.status, acme.tax_id) == ("Acme Ltd", "approved", "GB123456789")
    assert not open_items()


def test_hr_users_become_workers_with_cost_centre_manager_and_encrypted_cost_rate():
    erp_reference_data()
    counts = process("hr", "Users", [scim_user(2, manager=1), scim_user(1)])

    assert counts.created == 2
    ada = Worker.objects.get(employee_number="E-00002")
    assert ada.name == "Ada Worker2"
    assert ada.email == "worker2@lb.example"
    assert ada.legal_entity.code == "LB-GB"
    assert ada.cost_centre.code == "GB-100"
    assert ada.manager.employee_number == "E-00001"
    assert ada.employment_status == "active"
    assert (ada.cost_rate, ada.cost_rate_currency_id) == (Decimal("85.50"), "GBP")
    assert ref_of("hr", ada) == "scim-2"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT cost_rate FROM sync_worker WHERE id = %s", [ada.pk])
        assert "85.5" not in str(cursor.fetchone()[0])  # encrypted at rest


def test_a_worker_hr_sends_without_a_cost_centre_is_kept_with_none_for_the_time_rule():
    erp_reference_data()
    process("hr", "Users", [scim_user(1, cost_centre=None)])

    assert Worker.objects.get().cost_centre is None
    assert not open_items()


def test_erp_employees_psa_users_and_placeholders_link_to_the_hr_worker_master():
    whole_firm()

    ada = Worker.objects.get(employee_number="E-00001")
    assert (ref_of("hr", ada), ref_of("erp", ada), ref_of("psa", ada)) == ("scim-1", "41", "701")
    placeholder = RolePlaceholder.objects.get()
    assert (placeholder.role_name, placeholder.project.code) == ("Senior Consultant", "P-000001")
    assert ref_of("psa", placeholder) == "799"
    assert Worker.objects.count() == 2  # the ERP and the PSA created no worker
    assert not open_items()


def test_erp_jobs_and_tasks_meet_psa_workspaces_and_stories_on_the_project_and_wbs_keys():
    whole_firm()

    project = Project.objects.get()
    assert (project.code, project.status, project.customer.name) == ("P-000001", "open", "Acme Ltd")
    assert (project.legal_entity.code, project.currency_id) == ("LB-GB", "GBP")
    assert (ref_of("erp", project), ref_of("psa", project)) == ("50", "500")
    design = Task.objects.get(code="P-000001.1.1")
    assert design.parent.code == "P-000001.1"  # parent later in the batch: created first
    assert (ref_of("erp", design), ref_of("psa", design)) == ("61", "600")
    assert Task.objects.get(code="P-000001.0.1").status == "closed"


# --- idempotency and changes ----------------------------------------------------------------


def test_processing_the_same_payloads_again_changes_nothing():
    whole_firm()
    versions = {
        m: sorted(m.objects.values_list("version", flat=True))
        for m in (LegalEntity, AccountingPeriod, Customer, Worker, Project, Task)
    }
    history = {m: m.history.count() for m in versions}
    refs = ExternalRef.objects.count()

    InboxItem.objects.all().delete()  # the inbox would skip equal payloads: force a re-run
    whole_firm()

    assert {m: sorted(m.objects.values_list("version", flat=True)) for m in versions} == versions
    assert {m: m.history.count() for m in versions} == history
    assert ExternalRef.objects.count() == refs
    assert not open_items()


def test_a_changed_payload_updates_the_record_with_a_version_bump_and_history():
    erp_reference_data()
    october = AccountingPeriod.objects.get(start_date=dt.date(2026, 10, 1))

    counts = process("erp", "accountingPeriod", [period(closed="T")])

    october.refresh_from_db()
    assert (counts.updated, october.status, october.version) == (1, "closed", 2)
    assert october.history.first().history_actor.startswith("run:")


# --- ownership -------------------------------------------------------------------------------


def test_a_psa_change_to_a_worker_field_is_refused_and_reported_while_the_link_applies():
    erp_reference_data()
    process("hr", "Users", [scim_user(1)])

    counts = process("psa", "users", [psa_user(1, full_name="Ada Renamed")])

    ada = Worker.objects.get()
    assert (ada.name, ada.version, ref_of("psa", ada)) == ("Ada Worker1", 1, "701")
    assert counts.refused == 1
    (item,) = open_items()
    assert (item.code, item.queue, item.stage) == (
        "FIELD_OWNED_ELSEWHERE",
        "time_and_expense",
        "own",
    )
    assert item.detail["field"] == "name"
    assert (item.detail["owner"], item.detail["source"]) == ("hr", "psa")


def test_the_owners_change_to_the_same_worker_field_applies():
    erp_reference_data()
    process("hr", "Users", [scim_user(1)])

    process("hr", "Users", [scim_user(1, displayName="Ada Renamed")])

    ada = Worker.objects.get()
    assert (ada.name, ada.version) == ("Ada Renamed", 2)
    assert not open_items()


def test_an_hr_termination_moves_the_worker_to_terminated():
    erp_reference_data()
    process("hr", "Users", [scim_user(1)])
    process("hr", "Users", [scim_user(1, active=False)])

    assert Worker.objects.get().employment_status == "terminated"


# --- exceptions ------------------------------------------------------------------------------


ARABIC_INDIC_10_31_2026 = "\u0661\u0660/\u0663\u0661/\u0662\u0660\u0662\u0666"


@pytest.mark.parametrize(
    ("system", "entity", "payload", "reason"),
    [
        ("erp", "subsidiary", {"id": "10", "name": "X", "currency": "1"}, "`country` is missing"),
        ("erp", "accountingPeriod", period(startdate="31/31/2026"), "`startdate`"),
        ("erp", "accountingPeriod", period(enddate="20261031"), "`enddate` '20261031'"),
        ("erp", "accountingPeriod", period(enddate=ARABIC_INDIC_10_31_2026), "`enddate`"),
        ("erp", "job", job(entitystatus="9"), "`entitystatus` '9' is not one of"),
        ("erp", "customer", customer(companyname="x" * 300), "300 characters"),
        ("hr", "Users", scim_user(1, active="yes"), "`active` must be true or false"),
        (
            "hr",
            "Users",
            scim_user(1, **{COSTING: {"costRate": {"amount": "1e999x"}}}),
            "costRate.amount",
        ),
        ("psa", "workspaces", {"id": "500", "title": 12.5}, "`title` must be text"),
        ("psa", "users", {"id": "1", "full_name": "No Mail"}, "`email_address` is missing"),
        ("psa", "stories", ["not", "an", "object"], "not a JSON object"),
    ],
)
def test_a_malformed_payload_is_parked_with_a_clear_reason_and_writes_nothing(
    system, entity, payload, reason
):
    erp_reference_data()
    before = {
        m: m.objects.count() for m in (LegalEntity, AccountingPeriod, Customer, Worker, Project)
    }

    counts = process(system, entity, [payload])

    (item,) = open_items(code="MALFORMED_PAYLOAD")
    assert item.queue == "integration_ops"
    assert reason in item.message
    assert counts.failed == 1
    assert {m: m.objects.count() for m in before} == before
    assert InboxItem.objects.filter(system=system, entity=entity).last().status == "parked"


def test_a_workspace_without_an_erp_project_is_a_project_set_up_exception():
    erp_reference_data()

    process("psa", "workspaces", [workspace(id="501", external_reference="P-000009")])

    (item,) = open_items()
    assert (item.code, item.queue, item.record_key) == (
        "PROJECT_NOT_PROVISIONED",
        "project_setup",
        "psa:workspaces:501",
    )
    assert Project.objects.count() == 0


def test_a_workspace_of_a_legal_entity_without_a_subsidiary_is_a_mapping_exception():
    erp_reference_data()

    process(
        "psa",
        "workspaces",
        [workspace(id="502", external_reference="P-000010", legal_entity="LB-NL")],
    )

    (item,) = open_items()
    assert (item.code, item.queue) == ("LEGAL_ENTITY_UNMAPPED", "mapping")
    assert "LB-NL" in item.message
    assert item.legal_entity == "LB-NL"


def test_a_story_without_an_erp_task_is_parked_for_project_set_up():
    whole_firm()

    process("psa", "stories", [story(601, "P-000001.9.1", title="Change request CR-1")])

    (item,) = open_items()
    assert (item.code, item.queue) == ("TASK_NOT_PROVISIONED", "project_setup")
    assert not Task.objects.filter(code="P-000001.9.1").exists()


def test_a_worker_whose_organisation_matches_no_legal_entity_is_parked():
    erp_reference_data()
    user = scim_user(1)
    user[ENTERPRISE].update(division="LB-XX", organization="Nobody B.V.")

    process("hr", "Users", [user])

    (item,) = open_items()
    assert (item.code, item.queue) == ("LEGAL_ENTITY_UNKNOWN", "mapping")
    assert not Worker.objects.exists()


def test_an_erp_employee_hr_has_not_delivered_is_parked_and_linked_on_replay():
    erp_reference_data()
    process("erp", "employee", [employee(1)])
    (item,) = open_items()
    assert (item.code, item.queue) == ("WORKER_NOT_IN_HR", "time_and_expense")
    assert not Worker.objects.exists()  # the ERP never creates a worker

    process("hr", "Users", [scim_user(1)])
    parked = InboxItem.objects.filter(entity="employee", status="parked")
    parked.update(status="pending")  # what a replay does
    run = SyncRun.objects.create(kind="replay", started_at=timezone.now())
    PROCESSORS["erp", "employee"](
        inbox_ids=[i.id for i in InboxItem.objects.filter(entity="employee")], run=run
    )

    assert ref_of("erp", Worker.objects.get()) == "41"
    item.refresh_from_db()
    assert item.status == "resolved"


def test_two_erp_employees_naming_one_worker_link_once_and_report_the_other():
    erp_reference_data()
    process("hr", "Users", [scim_user(1)])

    process("erp", "employee", [employee(1), employee(1, id="99")])

    assert ref_of("erp", Worker.objects.get()) == "41"
    (item,) = open_items()
    assert (item.code, item.queue, item.record_key) == (
        "REFERENCE_CONFLICT",
        "integration_ops",
        "erp:employee:99",
    )


def test_an_erp_status_move_the_lifecycle_forbids_is_refused_and_the_rest_applies():
    erp_reference_data()
    process("erp", "job", [job(entitystatus="1")])
    assert Project.objects.get().status == "closed"

    # closed → provisioning is not a lifecycle move (a closed project is only reopened).
    process("erp", "job", [job(entitystatus="4", companyname="Acme rollout II")])

    project = Project.objects.get()
    assert (project.status, project.name) == ("closed", "Acme rollout II")
    (item,) = open_items()
    assert (item.code, item.queue) == ("STATUS_CHANGE_REFUSED", "project_setup")


def test_an_erp_change_to_a_crm_owned_customer_field_is_refused_but_its_tax_id_applies():
    erp_reference_data()

    process("erp", "customer", [customer(companyname="Acme Limited", vatregnumber="GB999")])

    acme = Customer.objects.get()
    assert (acme.name, acme.tax_id) == ("Acme Ltd", "GB999")  # name: CRM's; tax id: ERP's
    (item,) = open_items()
    assert (item.code, item.detail["field"], item.queue) == (
        "FIELD_OWNED_ELSEWHERE",
        "name",
        "customer_master",
    )


# --- registry, order and bulk --------------------------------------------------------------


def test_the_processing_order_covers_every_processor_once_and_references_come_first():
    assert len(PROCESSING_ORDER) == len(set(PROCESSING_ORDER))
    assert set(PROCESSORS) <= set(PROCESSING_ORDER)
    assert PROCESSING_ORDER[-1] == ("psa", "time_entries")
    position = {key: n for n, key in enumerate(PROCESSING_ORDER)}
    for before, after in [
        (("erp", "currency"), ("erp", "subsidiary")),
        (("erp", "subsidiary"), ("hr", "Users")),
        (("hr", "Users"), ("erp", "employee")),
        (("erp", "job"), ("psa", "workspaces")),
        (("erp", "projectTask"), ("psa", "stories")),
        (("psa", "assignments"), ("psa", "users")),
    ]:
        assert position[before] < position[after]


def _statements(captured) -> Counter:
    return Counter(
        re.sub(r"_django_curs_\w+", "cursor", q["sql"]).split("(")[0].split(" WHERE")[0][:60]
        for q in captured.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    )


@pytest.mark.parametrize(
    ("system", "entity", "payloads"),
    [
        ("hr", "Users", lambda first, count: [scim_user(n) for n in range(first, first + count)]),
        (
            "erp",
            "employee",
            lambda first, count: [employee(n) for n in range(first, first + count)],
        ),
        ("psa", "users", lambda first, count: [psa_user(n) for n in range(first, first + count)]),
        (
            "erp",
            "customer",
            lambda first, count: [
                customer(id=str(n), externalid=f"C-{n}", companyname=f"Client {n}")
                for n in range(first, first + count)
            ],
        ),
    ],
)
def test_a_batch_reads_with_a_fixed_number_of_queries_whatever_its_size(system, entity, payloads):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    erp_reference_data()
    process("hr", "Users", [scim_user(n) for n in range(1, 300)])

    def statements(first: int, count: int) -> Counter:
        with CaptureQueriesContext(connection) as captured:
            process(system, entity, payloads(first, count))
        return _statements(captured)

    statements(1, 2)  # warms the content-type cache
    if system == "hr":
        small, large = statements(1000, 5), statements(2000, 200)
    else:
        small, large = statements(10, 5), statements(100, 150)
    reads = lambda c: {k: v for k, v in c.items() if not k.startswith("INSERT")}  # noqa: E731
    assert reads(large) == reads(small)
    assert all(n <= 8 for k, n in large.items() if k.startswith("INSERT")), large


# --- end to end: a seeded sandbox firm through the connectors, master data, then time --------


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_a_seeded_firm_syncs_master_data_and_every_approved_entry_posts_or_waits_in_its_queue(
    django_user_model,
):
    import httpx

    from sandbox.core.app import SandboxApp
    from sandbox.core.faults import FaultBook
    from sandbox.generator.seed import sandbox_seed
    from sync.connectors.base import ConnectionConfig
    from sync.integrations.kantata.client import KantataConnector
    from sync.integrations.netsuite.client import NetSuiteConnector
    from sync.integrations.netsuite.columns import ERP_COLUMNS
    from sync.integrations.scim.client import ScimConnector
    from sync.mappings.services import (
        mapping_entry_set,
        mapping_set_create,
        mapping_version_create_draft,
        mapping_version_publish,
        mapping_version_submit,
    )
    from sync.models import TimeEntry
    from sync.pipeline.models import Connection, Delivery
    from sync.pipeline.time_posting.flow import time_entries_process

    manifest = sandbox_seed(seed=42, time_entries=1_500, reset=True).manifest
    app = SandboxApp(faults=FaultBook(seed=1), manage_connections=False, sleep=lambda _s: None)
    transport = httpx.WSGITransport(app=app)

    def config(system: str) -> ConnectionConfig:
        dialect = app.dialect(system)
        credentials = dialect.credentials("http://sandbox.test" + dialect.prefix)
        return ConnectionConfig(
            system=system,
            base_url=credentials.pop("base_url"),
            credentials={k: str(v) for k, v in credentials.items()},
        )

    connectors = {
        "erp": NetSuiteConnector(config("netsuite"), transport=transport, columns=ERP_COLUMNS),
        "hr": ScimConnector(config("scim"), transport=transport),
        "psa": KantataConnector(config("kantata"), transport=transport),
    }
    erp = Connection.objects.create(
        name="erp", system="erp", dialect="netsuite", base_url="http://sandbox.test/netsuite"
    )
    run = SyncRun.objects.create(kind="cycle", started_at=timezone.now())

    def pull(system: str, entity: str) -> list[int]:
        ids: list[int] = []
        for page in connectors[system].pull(entity=entity):
            stored = inbox_store(
                system=system,
                entity=entity,
                run_id=run.id,
                records=[(str(r["id"]), r) for r in page.records],
            )
            ids += [i.id for i in stored.new]
        return ids

    def legal_entity_mapping_publish() -> None:
        # Every subsidiary the ERP has, i.e. every entity but the one planted as unmapped.
        admin = django_user_model.objects.create_user("mapper")
        unmapped = {e["code"] for e in manifest["legal_entities"] if not e["erp_mapped"]}
        mapping_set = mapping_set_create(
            slug="legal-entity", name="Legal entity → subsidiary", kind="legal_entity", user=admin
        )
        draft = mapping_version_create_draft(mapping_set=mapping_set, user=admin)
        for entity in LegalEntity.objects.exclude(code__in=unmapped):
            mapping_entry_set(
                version=draft,
                source_value=entity.code,
                target_value=ref_of("erp", entity),
                user=admin,
            )
        mapping_version_submit(version=draft, user=admin)
        mapping_version_publish(version=draft, effective_from=dt.date(2025, 1, 1), user=None)

    summary: dict[tuple[str, str], tuple[int, int, int]] = {}
    for system, entity in PROCESSING_ORDER:
        if (system, entity) == ("psa", "time_entries"):
            break
        counts = PROCESSORS[system, entity](inbox_ids=pull(system, entity), run=run)
        summary[system, entity] = (counts.created + counts.updated, counts.unchanged, counts.failed)
        if (system, entity) == ("erp", "subsidiary"):
            legal_entity_mapping_publish()
    time_ids = pull("psa", "time_entries")
    time_entries_process(inbox_ids=time_ids, run=run, erp=erp)

    approved = {str(i.external_id) for i in InboxItem.objects.filter(id__in=time_ids)}
    entry_type = ContentType.objects.get_for_model(TimeEntry)
    posted = set(
        TimeEntry.objects.filter(
            pk__in=[
                int(pk)
                for pk in Delivery.objects.filter(content_type=entry_type).values_list(
                    "object_id", flat=True
                )
            ],
        ).values_list("psa_id", flat=True)
    )
    # Already in the ERP (posted before Ledgerbridge): recorded as posted with the ERP's id.
    with_erp_ref = set(
        ExternalRef.objects.filter(system="erp", content_type=entry_type).values_list(
            "object_id", flat=True
        )
    )
    linked = {
        psa_id
        for pk, psa_id in TimeEntry.objects.filter(status="posted").values_list("pk", "psa_id")
        if str(pk) in with_erp_ref
    }
    in_erp = {
        key.removeprefix("KT-TE-")
        for key in TargetRecord.objects.filter(
            record_type="timeBill", external_id__startswith="KT-TE-"
        ).values_list("external_id", flat=True)
    }
    parked = {
        item.record_key.rsplit(":", 1)[1]: item
        for item in ExceptionItem.objects.filter(
            status="open", record_key__startswith="psa:time_entry:"
        )
    }
    by_code = Counter(item.code for item in parked.values())
    print(f"\nmaster data (written, unchanged, failed): {summary}")
    master = Counter(
        i.code
        for i in ExceptionItem.objects.filter(status="open").exclude(
            record_key__startswith="psa:time_entry:"
        )
    )
    print(f"master-data exceptions: {dict(sorted(master.items()))}")
    print(
        f"approved {len(approved)}, posted {len(posted)}, already in the ERP and linked "
        f"{len(linked)}, parked {len(parked)}: {dict(sorted(by_code.items()))}"
    )

    # Every approved entry is posted exactly once, was already in the ERP (linked, not posted
    # again), or waits in a queue; nothing is dropped.
    assert approved == posted | linked | set(parked)
    assert not posted & set(parked)
    assert not linked & set(parked)
    assert not posted & linked
    assert TimeEntry.objects.count() == len(posted) + len(linked)
    assert posted, "some time must post"
    assert linked, "the seeded ERP holds history"
    # What the ERP already held is never posted again; what it holds and we could resolve is
    # linked, whatever today's posting rules say (closed periods, closed projects).
    assert not in_erp & posted
    assert linked == in_erp & approved - set(parked)
    assert not {
        k
        for k, i in parked.items()
        if k in in_erp and i.code in {"PERIOD_CLOSED", "PROJECT_NOT_OPEN"}
    }
    # Master data all arrived: nothing malformed, no reference missing.
    assert not ExceptionItem.objects.filter(
        code__in=["MALFORMED_PAYLOAD", "REFERENCE_MISSING", "REFERENCE_CONFLICT"]
    ).exists()

    expected = {
        "closed_period": ({"PERIOD_CLOSED"}, "time_and_expense"),
        "invalid_task": ({"TASK_UNKNOWN", "TASK_CLOSED"}, "project_setup"),
        "role_placeholder": ({"WORKER_IS_PLACEHOLDER"}, "project_setup"),
    }
    faults = manifest["faults"]
    for fault in faults:
        if fault["kind"] in expected:
            codes, queue = expected[fault["kind"]]
            item = parked[fault["records"][0]["id"]]
            assert (item.code in codes, item.queue) == (True, queue), (fault, item.code)
    kantata_users = {
        f["detail"]["kantata_user_id"]
        for f in faults
        if f["kind"] == "worker_missing_cost_centre" and f["detail"]["unposted_time_entries"]
    }
    time_users = {
        str(i.external_id): i.payload["user_id"] for i in InboxItem.objects.filter(id__in=time_ids)
    }
    cost_centre_users = {
        time_users[k] for k, i in parked.items() if i.code == "COST_CENTRE_MISSING"
    }
    assert kantata_users
    assert cost_centre_users == kantata_users
    assert {i.queue for i in parked.values() if i.code == "COST_CENTRE_MISSING"} == {
        "time_and_expense"
    }
    assert not {k for k, u in time_users.items() if u in kantata_users} & posted
    unmapped = [f for f in faults if f["kind"] == "project_legal_entity_unmapped"]
    assert unmapped
    for fault in unmapped:
        (item,) = open_items(record_key=f"psa:workspaces:{fault['records'][0]['id']}")
        assert (item.code, item.queue) == ("LEGAL_ENTITY_UNMAPPED", "mapping")
    unmapped_workspaces = {f["records"][0]["id"] for f in unmapped}
    on_unmapped = {
        str(i.external_id)
        for i in InboxItem.objects.filter(id__in=time_ids)
        if i.payload["workspace_id"] in unmapped_workspaces
    }
    assert on_unmapped
    assert on_unmapped <= set(parked)


# --- re-offer: a record parked for data another system brings is processed once it comes -----


def _hours_later(hours: float) -> None:
    """As if `hours` had passed since every open item last failed."""
    for item in ExceptionItem.objects.filter(status="open"):
        ExceptionItem.objects.filter(pk=item.pk).update(
            last_failed_at=item.last_failed_at - dt.timedelta(hours=hours)
        )


def test_hr_workers_processed_before_the_erps_legal_entities_are_created_by_a_later_cycle():
    from sync.pipeline.cycle import sync_cycle_run

    process("hr", "Users", [scim_user(1), scim_user(2)])  # HR's cycle ran first
    assert {i.code for i in open_items()} == {"LEGAL_ENTITY_UNKNOWN"}
    erp_reference_data()  # then the ERP's
    first = sync_cycle_run(connections=[])  # within the minute: not yet re-offered
    assert first.reoffered == 0
    assert not Worker.objects.exists()

    _hours_later(1 / 60)
    run = sync_cycle_run(connections=[])

    assert run.reoffered == 2
    assert sorted(Worker.objects.values_list("employee_number", flat=True)) == [
        "E-00001",
        "E-00002",
    ]
    assert not open_items()
    assert set(ExceptionItem.objects.values_list("status", flat=True)) == {"resolved"}


def test_a_record_that_fails_again_waits_twice_as_long_before_the_next_offer():
    from sync.pipeline.reoffer import parked_items_reoffer

    process("hr", "Users", [scim_user(1)])
    _hours_later(2 / 60)
    assert parked_items_reoffer() == 1
    run = SyncRun.objects.create(kind="process", started_at=timezone.now())
    PROCESSORS["hr", "Users"](
        inbox_ids=list(InboxItem.objects.values_list("id", flat=True)), run=run
    )  # still no legal entity: fails again
    (item,) = open_items()
    assert item.occurrences == 2
    _hours_later(1.5 / 60)
    assert parked_items_reoffer() == 0  # 2 minutes after a second failure, not 1.5
    _hours_later(1 / 60)
    assert parked_items_reoffer() == 1


def test_what_only_a_person_can_fix_is_never_re_offered():
    from sync.pipeline.reoffer import parked_items_reoffer

    erp_reference_data()
    process("hr", "Users", [scim_user(1, active="yes")])  # malformed
    (item,) = open_items()
    assert item.code == "MALFORMED_PAYLOAD"
    _hours_later(48)
    assert parked_items_reoffer() == 0
    assert InboxItem.objects.get(entity="Users").status == "parked"


def test_re_offers_go_oldest_failure_first_up_to_the_limit():
    from sync.pipeline.reoffer import parked_items_reoffer

    process("hr", "Users", [scim_user(1)])
    process("hr", "Users", [scim_user(2)])
    _hours_later(1)
    older = ExceptionItem.objects.get(record_key__endswith="scim-2")
    ExceptionItem.objects.filter(pk=older.pk).update(
        last_failed_at=older.last_failed_at - dt.timedelta(minutes=5)
    )

    assert parked_items_reoffer(limit=1) == 1
    assert InboxItem.objects.get(status="pending").external_id == "scim-2"
    assert parked_items_reoffer(limit=1) == 1  # the other one; pending ones are not counted
    assert parked_items_reoffer() == 0
