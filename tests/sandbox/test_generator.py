"""The synthetic firm: deterministic, consistent across systems, and its manifest tells the truth.

The fault checks recount every planted fault from the stored records alone (as a reconciliation
would) and compare with the manifest, both ways.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import defaultdict
from decimal import Decimal

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from sandbox.generator.firm import BILLING_MODELS, SCALES, scale_time_entries
from sandbox.generator.seed import SandboxNotEmpty, sandbox_seed
from sandbox.generator.writer import money
from sandbox.models import SandboxRecord
from sandbox.salesforce.schema import BILLING_MODELS as CRM_BILLING_MODELS

DATABASES = ["default", "sandbox"]
ENTRIES = 2_500
SCIM_ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def _rows() -> list[tuple]:
    return list(
        SandboxRecord.objects.using("sandbox")
        .order_by("pk")
        .values_list(
            "pk",
            "system",
            "object_type",
            "external_id",
            "parent_id",
            "status",
            "data",
            "created_at",
            "updated_at",
            "deleted",
        )
    )


def _by_type() -> dict[tuple[str, str], list[SandboxRecord]]:
    found: dict[tuple[str, str], list[SandboxRecord]] = defaultdict(list)
    for record in SandboxRecord.objects.using("sandbox").order_by("pk"):
        found[(record.system, record.object_type)].append(record)
    return found


def _cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def _normalized(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


@pytest.fixture
def seeded():
    """A small firm in the sandbox, and its manifest."""
    return sandbox_seed(seed=42, time_entries=ENTRIES, reset=True).manifest


class Firm:
    """The stored records, indexed the way a reconciliation would index them."""

    def __init__(self, manifest: dict) -> None:
        records = _by_type()
        self.records = records
        self.as_of = dt.date.fromisoformat(manifest["as_of"])
        self.backlog_from = dt.date.fromisoformat(manifest["backlog_from"])
        self.workspaces = {r.pk: r for r in records["kantata", "workspaces"]}
        self.stories = {r.pk: r for r in records["kantata", "stories"]}
        self.users = {r.pk: r for r in records["kantata", "users"]}
        self.rate_cards = {r.pk: r for r in records["kantata", "rate_cards"]}
        self.time = records["kantata", "time_entries"]
        self.scim_by_email = {r.data["userName"]: r for r in records["scim", "User"]}
        self.subsidiaries = {r.external_id: r for r in records["netsuite", "subsidiary"]}
        self.subsidiary_by_id = {r.pk: r for r in records["netsuite", "subsidiary"]}
        self.currency_by_id = {r.pk: r.data["symbol"] for r in records["netsuite", "currency"]}
        self.ns_tasks = {r.external_id: r for r in records["netsuite", "projectTask"]}
        self.time_bills = {r.external_id for r in records["netsuite", "timeBill"]}
        self.periods = records["netsuite", "accountingPeriod"]

    def entity_currency(self, code: str) -> str | None:
        subsidiary = self.subsidiaries.get(code)
        if subsidiary is None:
            return None
        return self.currency_by_id[int(subsidiary.data["currency"])]

    def closed(self, code: str, day: str) -> bool:
        subsidiary = str(self.subsidiaries[code].pk)
        return any(
            p.data["closed"] and p.data["startDate"] <= day <= p.data["endDate"]
            for p in self.periods
            if p.data["subsidiary"] == subsidiary
        )

    def value(self, entry: SandboxRecord) -> int:
        return entry.data["time_in_minutes"] * entry.data["rate_in_cents"] // 60

    def unposted_reason(self, entry: SandboxRecord) -> str:
        """Why approved time outside the backlog week is not in the ERP, from the records."""
        workspace = self.workspaces[entry.parent_id]
        if workspace.data["legal_entity"] not in self.subsidiaries:
            return "project_legal_entity_unmapped"
        user = self.users[int(entry.data["user_id"])]
        if user.data["is_placeholder"]:
            return "role_placeholder"
        worker = self.scim_by_email[user.data["email_address"]]
        if "costCenter" not in worker.data[SCIM_ENTERPRISE]:
            return "worker_missing_cost_centre"
        story = self.stories[int(entry.data["story_id"])]
        task = self.ns_tasks.get(story.data["external_reference"])
        if task is None or (
            task.data["status"] == "COMPLETE"
            and entry.data["date_performed"] > task.data["endDate"]
        ):
            return "invalid_task"
        if self.closed(workspace.data["legal_entity"], entry.data["date_performed"]):
            return "closed_period"
        return "unexplained"


def _manifest_ids(manifest: dict, kind: str) -> set[int]:
    return {r["record_id"] for f in manifest["faults"] if f["kind"] == kind for r in f["records"]}


# -- determinism ----------------------------------------------------------------------------------
@pytest.mark.django_db(databases=DATABASES)
def test_the_same_seed_writes_identical_records_and_manifest():
    first = sandbox_seed(seed=7, time_entries=1_500, reset=True)
    rows = _rows()
    second = sandbox_seed(seed=7, time_entries=1_500, reset=True)
    assert _rows() == rows
    assert json.dumps(second.manifest, sort_keys=True) == json.dumps(first.manifest, sort_keys=True)


@pytest.mark.django_db(databases=DATABASES)
def test_a_different_seed_writes_a_different_firm():
    sandbox_seed(seed=7, time_entries=1_500, reset=True)
    rows = _rows()
    sandbox_seed(seed=8, time_entries=1_500, reset=True)
    other = _rows()
    assert [row[6] for row in other] != [row[6] for row in rows]


@pytest.mark.django_db(databases=DATABASES)
def test_the_requested_number_of_time_entries_is_written_exactly(seeded):
    count = (
        SandboxRecord.objects.using("sandbox")
        .filter(system="kantata", object_type="time_entries")
        .count()
    )
    assert count == ENTRIES == seeded["records"]["kantata"]["time_entries"]


@pytest.mark.parametrize(
    ("scale", "expected"),
    [("demo", 5_000), ("small", 50_000), ("large", 1_000_000), ("1234", 1_234), ("2_000", 2_000)],
)
def test_a_scale_names_a_number_of_time_entries(scale, expected):
    assert scale_time_entries(scale) == expected
    assert SCALES["large"] >= 1_000_000


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_money_is_written_as_an_exact_json_decimal(cents):
    text = orjson.dumps({"amount": money(cents)})
    assert json.loads(text, parse_float=Decimal)["amount"] == Decimal(cents) / 100
    assert b"e" not in text.lower()


@pytest.mark.parametrize("scale", ["huge", "0", "-5", ""])
def test_an_unknown_scale_is_refused(scale):
    with pytest.raises(ValueError, match="scale must be"):
        scale_time_entries(scale)


# -- the manifest -------------------------------------------------------------------------------
@pytest.mark.django_db(databases=DATABASES)
def test_every_kind_of_fault_is_planted(seeded):
    kinds = {fault["kind"] for fault in seeded["faults"]}
    assert kinds == set(seeded["fault_kinds"])
    for fault in seeded["faults"]:
        money = fault["money_at_risk"]
        assert money is not None
        assert money["currency"] in {"USD", "GBP", "EUR"}
        assert Decimal(money["amount"]) >= 0


@pytest.mark.django_db(databases=DATABASES)
def test_every_manifest_record_exists_with_its_fault(seeded):
    firm = Firm(seeded)
    for fault in seeded["faults"]:
        for ref in fault["records"]:
            record = SandboxRecord.objects.using("sandbox").get(pk=ref["record_id"])
            assert (record.system, record.object_type) == (fault["system"], fault["object_type"])
            assert record.external_id == ref["external_id"] or fault["system"] == "kantata"
        kind = fault["kind"]
        first = SandboxRecord.objects.using("sandbox").get(pk=fault["records"][0]["record_id"])
        if kind in {"closed_period", "invalid_task", "role_placeholder"}:
            assert first.status == "approved"
            assert f"KT-TE-{first.pk}" not in firm.time_bills
            assert firm.unposted_reason(first) == kind
            assert _cents(fault["money_at_risk"]["amount"]) == firm.value(first)
        elif kind == "worker_missing_cost_centre":
            assert "costCenter" not in first.data[SCIM_ENTERPRISE]
        elif kind == "project_legal_entity_unmapped":
            assert first.data["legal_entity"] not in firm.subsidiaries
        elif kind == "customer_missing_tax_data":
            assert not first.data.get("Tax_Registration__c")
            assert not first.data.get("vatRegNumber")
        elif kind == "duplicate_customer":
            names = {
                _normalized(
                    SandboxRecord.objects.using("sandbox").get(pk=r["record_id"]).data.get("Name")
                    or SandboxRecord.objects.using("sandbox")
                    .get(pk=r["record_id"])
                    .data["companyName"]
                )
                for r in fault["records"]
            }
            assert len(names) == 1
        elif kind == "milestone_completed_not_invoiced":
            assert first.data["story_type"] == "milestone"
            assert first.status == "completed"
        elif kind == "unbilled_approved_time":
            total = 0
            for ref in fault["records"]:
                entry = SandboxRecord.objects.using("sandbox").get(pk=ref["record_id"])
                assert entry.status == "approved"
                assert entry.data["billable"]
                assert entry.data["date_performed"].startswith(fault["detail"]["period"])
                total += firm.value(entry)
            assert _cents(fault["money_at_risk"]["amount"]) == total


@pytest.mark.django_db(databases=DATABASES)
def test_unposted_approved_time_counted_from_the_records_matches_the_manifest(seeded):
    firm = Firm(seeded)
    found: dict[str, set[int]] = defaultdict(set)
    unposted_by_user: dict[str, int] = defaultdict(int)
    for entry in firm.time:
        if entry.status != "approved":
            assert f"KT-TE-{entry.pk}" not in firm.time_bills
            continue
        if entry.data["date_performed"] >= firm.backlog_from.isoformat():
            continue  # the last week is the sync's backlog, not a fault
        if f"KT-TE-{entry.pk}" in firm.time_bills:
            continue
        reason = firm.unposted_reason(entry)
        found[reason].add(entry.pk)
        if reason == "worker_missing_cost_centre":
            unposted_by_user[entry.data["user_id"]] += firm.value(entry)
    assert not found.pop("unexplained", set())
    for kind in ("closed_period", "invalid_task", "role_placeholder"):
        assert found[kind] == _manifest_ids(seeded, kind), kind
        assert found[kind], kind
    money = {
        f["detail"]["kantata_user_id"]: _cents(f["money_at_risk"]["amount"])
        for f in seeded["faults"]
        if f["kind"] == "worker_missing_cost_centre"
    }
    assert {user: cents for user, cents in money.items() if cents} == dict(unposted_by_user)


@pytest.mark.django_db(databases=DATABASES)
def test_master_data_faults_counted_from_the_records_match_the_manifest(seeded):
    firm = Firm(seeded)
    records = firm.records
    no_cost_centre = {
        r.pk for r in records["scim", "User"] if "costCenter" not in r.data[SCIM_ENTERPRISE]
    }
    assert no_cost_centre == _manifest_ids(seeded, "worker_missing_cost_centre") != set()
    unmapped = {
        pk for pk, w in firm.workspaces.items() if w.data["legal_entity"] not in firm.subsidiaries
    }
    assert unmapped == _manifest_ids(seeded, "project_legal_entity_unmapped") != set()
    no_tax = {
        r.pk for r in records["salesforce", "Account"] if not r.data.get("Tax_Registration__c")
    }
    no_tax |= {r.pk for r in records["netsuite", "customer"] if not r.data.get("vatRegNumber")}
    assert no_tax == _manifest_ids(seeded, "customer_missing_tax_data") != set()
    groups: dict[tuple, set[int]] = defaultdict(set)
    for account in records["salesforce", "Account"]:
        groups["salesforce", _normalized(account.data["Name"])].add(account.pk)
    for customer in records["netsuite", "customer"]:
        groups["netsuite", _normalized(customer.data["companyName"])].add(customer.pk)
    duplicates = {frozenset(ids) for ids in groups.values() if len(ids) > 1}
    manifest = {
        frozenset(r["record_id"] for r in f["records"])
        for f in seeded["faults"]
        if f["kind"] == "duplicate_customer"
    }
    assert duplicates == manifest != set()
    assert {s for s, _name in groups if len(groups[s, _name]) > 1} == {"salesforce", "netsuite"}


@pytest.mark.django_db(databases=DATABASES)
def test_billing_gaps_counted_from_the_records_match_the_manifest(seeded):
    firm = Firm(seeded)
    invoices = firm.records["stripe", "invoice"]
    billed_months = {
        (i.data["metadata"]["project_key"], i.data["metadata"]["period"])
        for i in invoices
        if "period" in i.data["metadata"]
    }
    billed_milestones = {
        i.data["metadata"]["milestone_key"]
        for i in invoices
        if "milestone_key" in i.data["metadata"]
    }
    month_of_as_of = firm.as_of.strftime("%Y-%m")
    leaked: dict[tuple[str, str], int] = defaultdict(int)
    for entry in firm.time:
        workspace = firm.workspaces[entry.parent_id]
        period = entry.data["date_performed"][:7]
        if (
            entry.status == "approved"
            and entry.data["billable"]
            and period < month_of_as_of
            and workspace.data["legal_entity"] in firm.subsidiaries
            and (workspace.external_id, period) not in billed_months
        ):
            leaked[workspace.external_id, period] += firm.value(entry)
    manifest = {
        (f["detail"]["project_key"], f["detail"]["period"]): _cents(f["money_at_risk"]["amount"])
        for f in seeded["faults"]
        if f["kind"] == "unbilled_approved_time"
    }
    assert dict(leaked) == manifest != {}
    unbilled = {
        pk
        for pk, s in firm.stories.items()
        if s.data["story_type"] == "milestone"
        and s.status == "completed"
        and s.data["external_reference"] not in billed_milestones
    }
    assert unbilled == _manifest_ids(seeded, "milestone_completed_not_invoiced") != set()


# -- consistency --------------------------------------------------------------------------------
@pytest.mark.django_db(databases=DATABASES)
def test_every_time_entry_and_expense_references_an_existing_workspace_task_and_user(seeded):
    firm = Firm(seeded)
    assignments = {
        (a.data["story_id"], a.data["assignee_id"]) for a in firm.records["kantata", "assignments"]
    }
    for entry in firm.time:
        story = firm.stories[int(entry.data["story_id"])]
        assert story.parent_id == entry.parent_id in firm.workspaces
        assert int(entry.data["user_id"]) in firm.users
        assert (entry.data["story_id"], entry.data["user_id"]) in assignments or (
            entry.pk in _manifest_ids(seeded, "invalid_task")
        )
        assert entry.data["time_in_minutes"] % 15 == 0
    for expense in firm.records["kantata", "expenses"]:
        assert expense.parent_id in firm.workspaces
        assert int(expense.data["user_id"]) in firm.users


@pytest.mark.django_db(databases=DATABASES)
def test_every_approved_time_entry_is_priced_from_its_workspaces_rate_card(seeded):
    firm = Firm(seeded)
    for entry in firm.time:
        if entry.status != "approved":
            continue
        workspace = firm.workspaces[entry.parent_id]
        card = firm.rate_cards[int(workspace.data["rate_card_id"])]
        role = firm.users[int(entry.data["user_id"])].data["headline"]
        rates = {line["role"]: line["rate_in_cents"] for line in card.data["rates"]}
        assert entry.data["rate_in_cents"] == rates[role]
        assert card.data["currency"] == entry.data["currency"]


@pytest.mark.django_db(databases=DATABASES)
def test_currencies_follow_the_legal_entity_in_every_system(seeded):
    firm = Firm(seeded)
    entity_currency = {e["code"]: e["currency"] for e in seeded["legal_entities"]}
    assert len({e["country"] for e in seeded["legal_entities"]}) >= 3
    assert len(set(entity_currency.values())) >= 3
    for workspace in firm.workspaces.values():
        assert workspace.data["currency"] == entity_currency[workspace.data["legal_entity"]]
    for entry in firm.time:
        assert entry.data["currency"] == firm.workspaces[entry.parent_id].data["currency"]
    for code in firm.subsidiaries:
        assert firm.entity_currency(code) == entity_currency[code]
    for kind in ("customer", "job", "invoice"):
        for record in firm.records["netsuite", kind]:
            subsidiary = firm.subsidiary_by_id[int(record.data["subsidiary"])]
            assert (
                firm.currency_by_id[int(record.data["currency"])]
                == entity_currency[subsidiary.external_id]
            )
    for opportunity in firm.records["salesforce", "Opportunity"]:
        assert (
            opportunity.data["CurrencyIsoCode"]
            == entity_currency[opportunity.data["Legal_Entity__c"]]
        )
    for invoice in firm.records["stripe", "invoice"]:
        assert (
            invoice.data["currency"]
            == entity_currency[invoice.data["metadata"]["legal_entity"]].lower()
        )


@pytest.mark.django_db(databases=DATABASES)
def test_all_three_billing_models_are_sold_delivered_and_billed(seeded):
    firm = Firm(seeded)
    models = {"Time and Materials", "Fixed Fee", "Usage"}
    assert {c.data["Billing_Model__c"] for c in firm.records["salesforce", "Contract"]} == models
    assert {w.data["billing_model"] for w in firm.workspaces.values()} == models
    billed = {i.data["metadata"]["billing_model"] for i in firm.records["stripe", "invoice"]}
    assert billed == models
    assert firm.records["stripe", "usage_record"]
    assert any(s.data["story_type"] == "milestone" for s in firm.stories.values())


@pytest.mark.django_db(databases=DATABASES)
def test_role_placeholders_are_psa_users_but_not_hr_workers(seeded):
    firm = Firm(seeded)
    placeholders = [u for u in firm.users.values() if u.data["is_placeholder"]]
    named = [u for u in firm.users.values() if not u.data["is_placeholder"]]
    assert placeholders
    assert named
    scim_names = {r.data["displayName"] for r in firm.records["scim", "User"]}
    for user in placeholders:
        assert user.data["email_address"] is None
        assert user.data["full_name"] not in scim_names
    for user in named:
        assert user.data["email_address"] in firm.scim_by_email
    assert len(firm.records["scim", "User"]) == len(named)
    assert any(r.status == "inactive" for r in firm.records["scim", "User"])


@pytest.mark.django_db(databases=DATABASES)
def test_invoice_totals_match_their_lines_and_payments_settle_paid_invoices(seeded):
    firm = Firm(seeded)
    for invoice in firm.records["stripe", "invoice"]:
        lines = invoice.data["lines"]["data"]
        assert invoice.data["total"] == sum(line["amount"] for line in lines)
    ns_invoices = {r.pk: r for r in firm.records["netsuite", "invoice"]}
    for payment in firm.records["netsuite", "customerPayment"]:
        (applied,) = payment.data["apply"]
        invoice = ns_invoices[int(applied["doc"])]
        assert invoice.status == "B"
        assert Decimal(str(applied["amount"])) == Decimal(str(invoice.data["total"]))
    assert len(firm.records["netsuite", "invoice"]) == len(firm.records["stripe", "invoice"])


# -- seeding twice ------------------------------------------------------------------------------
@pytest.mark.django_db(databases=DATABASES)
def test_seeding_a_non_empty_sandbox_is_refused_until_reset(tmp_path):
    manifest = tmp_path / "manifest.json"
    args = ["sandbox", "seed", "--scale", "800", "--seed", "3", "--manifest", str(manifest)]
    call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    count = SandboxRecord.objects.using("sandbox").count()
    with pytest.raises(CommandError, match="--reset"):
        call_command(*args, stdout=io.StringIO(), stderr=io.StringIO())
    assert SandboxRecord.objects.using("sandbox").count() == count
    with pytest.raises(SandboxNotEmpty):
        sandbox_seed(seed=3, time_entries=800)
    call_command(*args, "--reset", stdout=io.StringIO(), stderr=io.StringIO())
    assert SandboxRecord.objects.using("sandbox").count() == count
    assert json.loads(manifest.read_text())["time_entries"] == 800


@pytest.mark.django_db(databases=DATABASES)
def test_the_command_reports_progress_and_writes_the_manifest(tmp_path):
    manifest = tmp_path / "out" / "manifest.json"
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(
        "sandbox",
        "seed",
        "--scale",
        "1000",
        "--manifest",
        str(manifest),
        "--as-of",
        "2026-09-15",
        stdout=stdout,
        stderr=stderr,
    )
    progress = [line for line in stderr.getvalue().splitlines() if "time entries" in line]
    assert 15 <= len(progress) <= 21
    assert "1,000 of 1,000 time entries (100%)" in progress[-1]
    written = json.loads(manifest.read_text())
    assert written["as_of"] == "2026-09-15"
    assert written["faults"]
    assert "seeded" in stdout.getvalue()
    latest = max(
        r.data["date_performed"]
        for r in SandboxRecord.objects.using("sandbox").filter(
            system="kantata", object_type="time_entries"
        )
    )
    assert latest < "2026-09-15"


# -- the dialects serve what the generator wrote ------------------------------------------------
def test_the_firms_billing_models_are_the_crms_picklist_values():
    assert BILLING_MODELS == CRM_BILLING_MODELS


@pytest.mark.django_db(databases=DATABASES)
def test_the_emulated_apis_serve_the_seeded_firm_and_its_faults(seeded, client):
    firm = Firm(seeded)
    token = client.post(
        "/salesforce/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-salesforce-client-id",
            "client_secret": "sandbox-salesforce-client-secret",
        },
    ).json()["access_token"]
    answer = client.get(
        "/salesforce/services/data/v60.0/query",
        params={"q": "SELECT Id FROM Account WHERE Tax_Registration__c = null"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    missing_tax = {
        r["id"]
        for f in seeded["faults"]
        if f["kind"] == "customer_missing_tax_data" and f["system"] == "salesforce"
        for r in f["records"]
    }
    assert {record["Id"] for record in answer["records"]} == missing_tax

    approved = client.get(
        "/kantata/api/v1/time_entries.json",
        params={"approved": "true", "per_page": 1},
        headers={"Authorization": "Bearer sandbox-kantata-token"},
    ).json()
    assert approved["count"] == sum(1 for e in firm.time if e.status == "approved")

    inactive = client.get(
        "/scim/v2/Users",
        params={"filter": "active eq false", "count": 1},
        headers={"Authorization": "Bearer sandbox-scim-token"},
    ).json()
    assert (
        inactive["totalResults"]
        == sum(1 for r in firm.records["scim", "User"] if r.status == "inactive")
        > 0
    )
    with_cost_centre = client.get(
        "/scim/v2/Users",
        params={"filter": f"{SCIM_ENTERPRISE}:costCenter pr", "count": 1},
        headers={"Authorization": "Bearer sandbox-scim-token"},
    ).json()
    assert with_cost_centre["totalResults"] == len(firm.records["scim", "User"]) - len(
        _manifest_ids(seeded, "worker_missing_cost_centre")
    )

    ns_token = client.post(
        "/netsuite/services/rest/auth/oauth2/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-netsuite-client-id",
            "client_secret": "sandbox-netsuite-client-secret",
        },
    ).json()["access_token"]
    counted = client.post(
        "/netsuite/services/rest/query/v1/suiteql",
        json={"q": "SELECT COUNT(*) FROM timeBill"},
        headers={"Authorization": f"Bearer {ns_token}", "Prefer": "transient"},
    ).json()
    (row,) = counted["items"]
    (count,) = [value for key, value in row.items() if key != "links"]
    assert int(count) == len(firm.time_bills)

    invoices = client.get(
        "/stripe/v1/invoices",
        params={"limit": 100, "status": "paid"},
        headers={"Authorization": "Bearer sk_test_51LedgerbridgeSandboxKey000000000000"},
    ).json()
    assert invoices["data"]
    for invoice in invoices["data"]:
        assert invoice["customer"].startswith("cus_")
        assert invoice["total"] == sum(line["amount"] for line in invoice["lines"]["data"])
