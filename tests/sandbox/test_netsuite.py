"""Contract tests of the NetSuite sandbox: record service, SuiteQL, ERP validation, async jobs."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from sandbox.core.faults import FaultBook
from sandbox.models import SandboxRecord
from sandbox.netsuite import views

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

REST = "/netsuite/services/rest"

# SQLite's in-memory test database (shared cache) refuses concurrent writers outright
# ("database table is locked"), so races between real threads are tested on PostgreSQL.
needs_postgres = pytest.mark.integration


@pytest.fixture
def token(client) -> str:
    answer = client.post(
        f"{REST}/auth/oauth2/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": views.CLIENT_ID,
            "client_secret": views.CLIENT_SECRET,
        },
    )
    assert answer.status_code == 200
    return answer.json()["access_token"]


@pytest.fixture
def ns(client, token) -> httpx.Client:
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def created_id(answer: httpx.Response) -> str:
    assert answer.status_code == 204, answer.text
    return answer.headers["Location"].rsplit("/", 1)[-1]


def create(ns, record_type: str, body: dict) -> str:
    return created_id(ns.post(f"{REST}/record/v1/{record_type}", json=body))


def error_of(answer: httpx.Response) -> dict:
    body = answer.json()
    assert set(body) == {"type", "title", "status", "o:errorDetails"}
    assert body["status"] == answer.status_code
    return body["o:errorDetails"][0]


def suiteql(ns, q: str, **params) -> httpx.Response:
    return ns.post(
        f"{REST}/query/v1/suiteql", params=params, json={"q": q}, headers={"Prefer": "transient"}
    )


@pytest.fixture
def books(ns) -> dict[str, str]:
    """A small ledger: USD subsidiary, department, customer, employee, open project and task."""
    ids = {}
    ids["usd"] = create(ns, "currency", {"name": "US Dollar", "symbol": "USD"})
    ids["eur"] = create(ns, "currency", {"name": "Euro", "symbol": "EUR"})
    ids["us"] = create(
        ns, "subsidiary", {"name": "Ledgerbridge US", "currency": {"id": ids["usd"]}}
    )
    ids["eu"] = create(
        ns, "subsidiary", {"name": "Ledgerbridge EU", "currency": {"id": ids["eur"]}}
    )
    ids["consulting"] = create(ns, "department", {"name": "Consulting"})
    ids["customer"] = create(
        ns,
        "customer",
        {"companyName": "Acme Corp", "subsidiary": {"id": ids["us"]}, "externalId": "CUS-1"},
    )
    ids["employee"] = create(
        ns,
        "employee",
        {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "subsidiary": {"id": ids["us"]},
            "department": {"id": ids["consulting"]},
        },
    )
    ids["job"] = create(
        ns, "job", {"companyName": "Acme rollout", "parent": {"id": ids["customer"]}}
    )
    ids["task"] = create(ns, "projectTask", {"title": "Design", "company": {"id": ids["job"]}})
    ids["jan"] = create(
        ns,
        "accountingPeriod",
        {
            "periodName": "Jan 2026",
            "startDate": "2026-01-01",
            "endDate": "2026-01-31",
            "closed": True,
        },
    )
    ids["feb"] = create(
        ns,
        "accountingPeriod",
        {"periodName": "Feb 2026", "startDate": "2026-02-01", "endDate": "2026-02-28"},
    )
    return ids


def time_bill(books: dict[str, str], **overrides) -> dict:
    body = {
        "employee": {"id": books["employee"]},
        "customer": {"id": books["job"]},
        "caseTaskEvent": {"id": books["task"]},
        "tranDate": "2026-02-10",
        "hours": 7.5,
        "isBillable": True,
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


# -- auth --------------------------------------------------------------------------------------
def test_a_request_without_credentials_is_refused_with_netsuites_invalid_login(client):
    answer = client.get(f"{REST}/record/v1/customer")
    assert answer.status_code == 401
    assert error_of(answer)["o:errorCode"] == "INVALID_LOGIN"
    assert answer.headers["Content-Type"].startswith("application/vnd.oracle.resource+json")


def test_a_wrong_client_secret_gets_no_token(client):
    answer = client.post(
        f"{REST}/auth/oauth2/v1/token",
        data={
            "grant_type": "client_credentials",
            "client_id": views.CLIENT_ID,
            "client_secret": "wrong",
        },
    )
    assert answer.status_code == 401


def _oauth1_header(*, method: str, url: str, params: dict, token_secret: str) -> str:
    oauth = {
        "oauth_consumer_key": views.CONSUMER_KEY,
        "oauth_token": views.TOKEN_ID,
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_timestamp": str(int(time.time())),
        "oauth_nonce": uuid.uuid4().hex,
        "oauth_version": "1.0",
    }
    signature = views.oauth1_signature(
        method=method,
        url=url,
        params={**oauth, **params},
        consumer_secret=views.CONSUMER_SECRET,
        token_secret=token_secret,
    )
    oauth["oauth_signature"] = signature
    from urllib.parse import quote

    fields = ", ".join(f'{k}="{quote(v, safe="")}"' for k, v in oauth.items())
    return f'OAuth realm="{views.ACCOUNT_ID}", {fields}'


def test_a_token_based_authentication_header_signed_with_the_test_secrets_is_accepted(client):
    url = f"http://sandbox.test{REST}/record/v1/customer"
    header = _oauth1_header(
        method="GET", url=url, params={"limit": "5"}, token_secret=views.TOKEN_SECRET
    )
    answer = client.get(url, params={"limit": "5"}, headers={"Authorization": header})
    assert answer.status_code == 200, answer.text


def test_a_token_based_authentication_header_with_a_bad_signature_is_refused(client):
    url = f"http://sandbox.test{REST}/record/v1/customer"
    header = _oauth1_header(method="GET", url=url, params={}, token_secret="not-the-secret")
    answer = client.get(url, headers={"Authorization": header})
    assert answer.status_code == 401
    assert error_of(answer)["o:errorCode"] == "INVALID_LOGIN"


# -- record service ----------------------------------------------------------------------------
def test_a_created_customer_is_read_back_with_its_references_and_external_id(ns, books):
    answer = ns.get(f"{REST}/record/v1/customer/{books['customer']}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["id"] == books["customer"]
    assert body["externalId"] == "CUS-1"
    assert body["companyName"] == "Acme Corp"
    assert body["subsidiary"]["id"] == books["us"]
    assert body["subsidiary"]["refName"] == "Ledgerbridge US"
    # The currency is sourced from the subsidiary when the customer names none.
    assert body["currency"]["refName"] == "USD"


def test_a_record_is_found_by_its_external_id(ns, books):
    answer = ns.get(f"{REST}/record/v1/customer/eid:CUS-1")
    assert answer.status_code == 200
    assert answer.json()["id"] == books["customer"]
    assert ns.get(f"{REST}/record/v1/customer/eid:NOPE").status_code == 404


def test_an_upsert_by_external_id_creates_once_then_updates_the_same_record(ns, books):
    url = f"{REST}/record/v1/customer/eid:CUS-2"
    body = {"companyName": "Globex", "subsidiary": {"id": books["us"]}}
    first = created_id(ns.put(url, json=body))
    second = created_id(ns.put(url, json={**body, "companyName": "Globex Inc"}))
    assert first == second
    record = ns.get(f"{REST}/record/v1/customer/{first}").json()
    assert record["companyName"] == "Globex Inc"
    assert record["externalId"] == "CUS-2"
    assert SandboxRecord.objects.filter(object_type="customer", external_id="CUS-2").count() == 1


def test_a_patch_changes_only_the_fields_sent(ns, books):
    url = f"{REST}/record/v1/customer/{books['customer']}"
    assert ns.patch(url, json={"email": "ap@acme.test"}).status_code == 204
    record = ns.get(url).json()
    assert record["email"] == "ap@acme.test"
    assert record["companyName"] == "Acme Corp"


def test_a_missing_record_is_a_404_nonexistent_id(ns, books):
    answer = ns.get(f"{REST}/record/v1/customer/999999")
    assert answer.status_code == 404
    assert error_of(answer)["o:errorCode"] == "NONEXISTENT_ID"


def test_record_lists_page_with_limit_and_offset_to_the_last_page(ns, books):
    for n in range(5):
        create(ns, "customer", {"companyName": f"Paged {n}", "subsidiary": {"id": books["us"]}})
    seen, offset = [], 0
    while True:
        page = ns.get(f"{REST}/record/v1/customer", params={"limit": 2, "offset": offset}).json()
        seen.extend(item["id"] for item in page["items"])
        assert page["totalResults"] == 6
        if not page["hasMore"]:
            assert "next" not in {link["rel"] for link in page["links"]}
            break
        offset += page["count"]
    assert len(seen) == len(set(seen)) == 6


def test_a_record_list_filters_with_q(ns, books):
    create(
        ns,
        "customer",
        {"companyName": "Initech", "subsidiary": {"id": books["us"]}, "isInactive": True},
    )
    answer = ns.get(f"{REST}/record/v1/customer", params={"q": 'companyName START_WITH "Ini"'})
    assert answer.json()["totalResults"] == 1
    active = ns.get(f"{REST}/record/v1/customer", params={"q": "isInactive IS false"}).json()
    assert [item["id"] for item in active["items"]] == [books["customer"]]


def test_a_limit_over_1000_is_refused(ns, books):
    answer = ns.get(f"{REST}/record/v1/customer", params={"limit": 1001})
    assert answer.status_code == 400
    assert error_of(answer)["o:errorCode"] == "INVALID_PARAMETER"


def test_an_invoice_sublist_is_expanded_on_request_and_totals_are_derived(ns, books):
    invoice = create(
        ns,
        "invoice",
        {
            "entity": {"id": books["customer"]},
            "tranDate": "2026-02-15",
            "item": {
                "items": [{"item": "SRV-1", "amount": 1200.50}, {"item": "SRV-2", "amount": 99.5}]
            },
        },
    )
    body = ns.get(
        f"{REST}/record/v1/invoice/{invoice}", params={"expandSubResources": "true"}
    ).json()
    assert body["total"] == 1300
    assert body["amountRemaining"] == 1300
    assert body["status"]["refName"] == "Open"
    assert body["tranId"] == f"INV{invoice}"
    assert [line["amount"] for line in body["item"]["items"]] == [1200.5, 99.5]


def test_a_customer_payment_applied_to_an_invoice_marks_it_paid_in_full(ns, books):
    invoice = create(
        ns,
        "invoice",
        {
            "entity": {"id": books["customer"]},
            "tranDate": "2026-02-15",
            "item": {"items": [{"amount": 500}]},
        },
    )
    create(
        ns,
        "customerPayment",
        {
            "customer": {"id": books["customer"]},
            "tranDate": "2026-02-20",
            "payment": 500,
            "apply": {"items": [{"doc": {"id": invoice}, "apply": True, "amount": 500}]},
        },
    )
    body = ns.get(f"{REST}/record/v1/invoice/{invoice}").json()
    assert body["amountRemaining"] == 0
    assert body["status"]["refName"] == "Paid In Full"
    payment = ns.get(f"{REST}/record/v1/customerPayment", params={"limit": 1}).json()
    url = f"{REST}/record/v1/customerPayment/{payment['items'][0]['id']}"
    assert ns.patch(url, json={"memo": "Wire 4711"}).status_code == 204


def test_deleting_a_customer_payment_reopens_the_invoice_it_paid(ns, books):
    invoice = create(
        ns,
        "invoice",
        {
            "entity": {"id": books["customer"]},
            "tranDate": "2026-02-15",
            "item": {"items": [{"amount": 500}]},
        },
    )
    payment = create(
        ns,
        "customerPayment",
        {
            "customer": {"id": books["customer"]},
            "tranDate": "2026-02-20",
            "payment": 500,
            "apply": {"items": [{"doc": {"id": invoice}, "apply": True, "amount": 500}]},
        },
    )
    paid = ns.get(f"{REST}/record/v1/invoice/{invoice}").json()
    assert (paid["amountRemaining"], paid["status"]["refName"]) == (0, "Paid In Full")

    assert ns.delete(f"{REST}/record/v1/customerPayment/{payment}").status_code == 204

    body = ns.get(f"{REST}/record/v1/invoice/{invoice}").json()
    assert body["amountRemaining"] == 500
    assert body["status"]["refName"] == "Open"


# -- ERP validation ----------------------------------------------------------------------------
def test_a_valid_time_bill_is_accepted_and_sources_the_employees_department(ns, books):
    bill = create(ns, "timeBill", time_bill(books))
    body = ns.get(f"{REST}/record/v1/timeBill/{bill}").json()
    assert body["department"]["id"] == books["consulting"]
    assert body["approvalStatus"]["refName"] == "Pending Approval"


def test_time_in_a_closed_accounting_period_is_refused(ns, books):
    answer = ns.post(f"{REST}/record/v1/timeBill", json=time_bill(books, tranDate="2026-01-15"))
    assert answer.status_code == 400
    detail = error_of(answer)
    assert detail["o:errorCode"] == "USER_ERROR"
    assert detail["o:errorPath"] == "tranDate"
    assert "closed" in detail["detail"]


def test_a_period_closed_for_another_subsidiary_does_not_block_time(ns, books):
    create(
        ns,
        "accountingPeriod",
        {
            "periodName": "Mar 2026 EU",
            "startDate": "2026-03-01",
            "endDate": "2026-03-31",
            "closed": True,
            "subsidiary": {"id": books["eu"]},
        },
    )
    answer = ns.post(f"{REST}/record/v1/timeBill", json=time_bill(books, tranDate="2026-03-02"))
    assert answer.status_code == 204


def test_an_expense_report_in_a_closed_period_is_refused(ns, books):
    answer = ns.post(
        f"{REST}/record/v1/expenseReport",
        json={
            "entity": {"id": books["employee"]},
            "tranDate": "2026-01-20",
            "expense": {"items": [{"amount": 42.1, "category": "Travel"}]},
        },
    )
    assert answer.status_code == 400
    assert error_of(answer)["o:errorPath"] == "tranDate"


def test_time_for_an_inactive_customer_is_refused(ns, books):
    ns.patch(f"{REST}/record/v1/customer/{books['customer']}", json={"isInactive": True})
    answer = ns.post(f"{REST}/record/v1/timeBill", json=time_bill(books))
    assert answer.status_code == 400
    detail = error_of(answer)
    assert detail["o:errorPath"] == "customer"
    assert "inactive" in detail["detail"]


def test_an_invoice_for_an_inactive_customer_is_refused(ns, books):
    ns.patch(f"{REST}/record/v1/customer/{books['customer']}", json={"isInactive": True})
    answer = ns.post(
        f"{REST}/record/v1/invoice",
        json={
            "entity": {"id": books["customer"]},
            "tranDate": "2026-02-15",
            "item": {"items": [{"amount": 10}]},
        },
    )
    assert answer.status_code == 400
    assert error_of(answer)["o:errorPath"] == "entity"


def test_time_on_a_closed_project_is_refused(ns, books):
    ns.patch(f"{REST}/record/v1/job/{books['job']}", json={"entityStatus": {"id": "1"}})
    answer = ns.post(f"{REST}/record/v1/timeBill", json=time_bill(books))
    assert answer.status_code == 400
    detail = error_of(answer)
    assert detail["o:errorPath"] == "customer"
    assert "closed" in detail["detail"]


@pytest.mark.parametrize("task", ["999999", "other-project"])
def test_time_on_an_unknown_task_or_a_task_of_another_project_is_refused(ns, books, task):
    if task == "other-project":
        other = create(ns, "job", {"companyName": "Other", "parent": {"id": books["customer"]}})
        task = create(ns, "projectTask", {"title": "Elsewhere", "company": {"id": other}})
    answer = ns.post(
        f"{REST}/record/v1/timeBill", json=time_bill(books, caseTaskEvent={"id": task})
    )
    assert answer.status_code == 400
    detail = error_of(answer)
    assert detail["o:errorCode"] == "INVALID_CONTENT"
    assert detail["o:errorPath"] == "caseTaskEvent"


def test_time_without_a_department_is_refused_when_the_employee_has_none(ns, books):
    employee = create(
        ns,
        "employee",
        {"firstName": "Grace", "lastName": "Hopper", "subsidiary": {"id": books["us"]}},
    )
    answer = ns.post(f"{REST}/record/v1/timeBill", json=time_bill(books, employee={"id": employee}))
    assert answer.status_code == 400
    detail = error_of(answer)
    assert detail["o:errorCode"] == "USER_ERROR"
    assert detail["o:errorPath"] == "department"
    assert "Please enter value(s) for: Department" in detail["detail"]


def test_an_invoice_in_another_currency_than_the_customers_is_refused(ns, books):
    answer = ns.post(
        f"{REST}/record/v1/invoice",
        json={
            "entity": {"id": books["customer"]},
            "tranDate": "2026-02-15",
            "currency": {"id": books["eur"]},
            "item": {"items": [{"amount": 10}]},
        },
    )
    assert answer.status_code == 400
    assert error_of(answer)["o:errorPath"] == "currency"


def test_a_project_in_another_subsidiary_than_its_customer_is_refused(ns, books):
    answer = ns.post(
        f"{REST}/record/v1/job",
        json={
            "companyName": "Wrong entity",
            "parent": {"id": books["customer"]},
            "subsidiary": {"id": books["eu"]},
        },
    )
    assert answer.status_code == 400
    assert error_of(answer)["o:errorPath"] == "subsidiary"


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"companyName": 42}, "companyName"),
        ({"companyName": "X", "subsidiary": "1"}, "subsidiary"),
        ({"companyName": "X", "subsidiary": {"id": "424242"}}, "subsidiary"),
        ({"companyName": "X", "favouriteColour": "blue"}, "favouriteColour"),
    ],
)
def test_bad_field_values_are_invalid_content_naming_the_field(ns, books, body, path):
    answer = ns.post(f"{REST}/record/v1/customer", json=body)
    assert answer.status_code == 400
    detail = error_of(answer)
    assert detail["o:errorCode"] == "INVALID_CONTENT"
    assert detail["o:errorPath"] == path


def test_a_missing_mandatory_field_is_a_user_error(ns, books):
    answer = ns.post(f"{REST}/record/v1/customer", json={"companyName": "No subsidiary"})
    assert answer.status_code == 400
    assert error_of(answer)["o:errorPath"] == "subsidiary"


def test_malformed_json_is_a_400_not_a_500(ns):
    answer = ns.post(
        f"{REST}/record/v1/customer",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert error_of(answer)["o:errorCode"] == "INVALID_CONTENT"


def test_an_unknown_record_type_is_a_404(ns):
    assert ns.get(f"{REST}/record/v1/spaceship").status_code == 404


# -- SuiteQL -----------------------------------------------------------------------------------
def test_suiteql_pages_with_has_more_to_the_last_page(ns, books):
    for n in range(6):
        create(ns, "timeBill", time_bill(books, hours=n + 1, tranDate=f"2026-02-{n + 10}"))
    q = "SELECT id, hours, trandate FROM timebill WHERE hours >= 2 ORDER BY hours DESC"
    hours, offset = [], 0
    while True:
        page = suiteql(ns, q, limit=2, offset=offset).json()
        assert page["totalResults"] == 5
        hours.extend(item["hours"] for item in page["items"])
        if not page["hasMore"]:
            break
        offset += page["count"]
    assert hours == ["6", "5", "4", "3", "2"]


def test_suiteql_answers_strings_in_lower_case_columns_with_netsuite_dates(ns, books):
    create(ns, "timeBill", time_bill(books, tranDate="2026-02-03"))
    page = suiteql(
        ns,
        "SELECT t.id, t.trandate, t.isbillable, TO_CHAR(t.trandate, 'YYYY-MM-DD') AS day "
        "FROM timebill t WHERE t.employee = " + books["employee"],
    ).json()
    item = page["items"][0]
    assert item["trandate"] == "2/3/2026"
    assert item["day"] == "2026-02-03"
    assert item["isbillable"] == "T"


def test_suiteql_filters_with_and_comparisons_like_and_in(ns, books):
    create(ns, "customer", {"companyName": "Acme Labs", "subsidiary": {"id": books["eu"]}})
    create(ns, "customer", {"companyName": "Zenith", "subsidiary": {"id": books["eu"]}})
    where = f"companyname LIKE 'Acme%' AND subsidiary IN ({books['eu']}, 0) AND isinactive = 'F'"
    page = suiteql(ns, "SELECT companyname FROM customer WHERE " + where).json()  # noqa: S608 - SuiteQL for the emulator
    assert [item["companyname"] for item in page["items"]] == ["Acme Labs"]


def test_suiteql_counts_and_reads_the_transaction_table(ns, books):
    create(
        ns,
        "invoice",
        {
            "entity": {"id": books["customer"]},
            "tranDate": "2026-02-15",
            "item": {"items": [{"amount": 10}]},
        },
    )
    count = suiteql(ns, "SELECT COUNT(*) AS n FROM transaction WHERE type = 'CustInvc'").json()
    assert count["items"][0]["n"] == "1"
    rows = suiteql(ns, "SELECT id, type, entity, total FROM transaction").json()
    assert rows["totalResults"] == 1
    assert rows["items"][0]["type"] == "CustInvc"
    assert rows["items"][0]["entity"] == books["customer"]
    assert rows["items"][0]["total"] == "10"


def test_suiteql_selects_records_changed_since_a_timestamp(ns, books):
    before = suiteql(ns, "SELECT MAX(id) FROM customer")
    assert before.status_code == 400  # aggregates other than COUNT(*) are not emulated
    page = suiteql(
        ns,
        "SELECT id FROM customer WHERE lastmodifieddate > "
        "TO_TIMESTAMP('2000-01-01 00:00:00', 'YYYY-MM-DD HH24:MI:SS')",
    ).json()
    assert [item["id"] for item in page["items"]] == [books["customer"]]
    future = suiteql(
        ns, "SELECT id FROM customer WHERE datecreated >= TO_DATE('2999-01-01', 'YYYY-MM-DD')"
    ).json()
    assert future["totalResults"] == 0


def test_a_bad_q_filter_is_a_400(ns, books):
    answer = ns.get(f"{REST}/record/v1/customer", params={"q": "companyName SOUNDS_LIKE x"})
    assert answer.status_code == 400
    assert error_of(answer)["o:errorCode"] == "INVALID_PARAMETER"


def test_a_malformed_suiteql_statement_is_a_400(ns, books):
    answer = suiteql(ns, "SELECT FROM WHERE")
    assert answer.status_code == 400
    assert error_of(answer)["o:errorCode"] == "INVALID_PARAMETER"
    unknown = suiteql(ns, "SELECT nosuchcolumn FROM customer")
    assert unknown.status_code == 400


# -- concurrency and async ---------------------------------------------------------------------
def test_requests_over_the_account_concurrency_limit_get_429(ns, sandbox_app):
    faults: FaultBook = sandbox_app.faults
    faults.configure(system="netsuite", changes={"concurrency_limit": 1})
    faults.enter(system="netsuite")  # one request already in flight
    try:
        answer = ns.get(f"{REST}/record/v1/customer")
    finally:
        faults.leave(system="netsuite")
    assert answer.status_code == 429
    assert error_of(answer)["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert ns.get(f"{REST}/record/v1/customer").status_code == 200


def test_an_async_create_answers_202_with_a_job_whose_result_is_the_created_record(ns, books):
    answer = ns.post(
        f"{REST}/record/v1/customer",
        json={"companyName": "Async Co", "subsidiary": {"id": books["us"]}},
        headers={"Prefer": "respond-async"},
    )
    assert answer.status_code == 202
    job_url = answer.headers["Location"]
    job = ns.get(job_url).json()
    assert job["completed"] is True
    assert job["progress"] == "succeeded"
    tasks = ns.get(job_url + "/task").json()
    result = ns.get(tasks["items"][0]["links"][0]["href"] + "/result")
    assert result.status_code == 204
    assert ns.get(result.headers["Location"]).json()["companyName"] == "Async Co"


def test_a_repeated_idempotency_key_returns_the_same_job_and_writes_once(ns, books):
    key = str(uuid.uuid4())
    body = {"companyName": "Once Only", "subsidiary": {"id": books["us"]}}
    headers = {"Prefer": "respond-async", "X-NetSuite-Idempotency-Key": key}
    first = ns.post(f"{REST}/record/v1/customer", json=body, headers=headers)
    second = ns.post(f"{REST}/record/v1/customer", json=body, headers=headers)
    assert first.status_code == second.status_code == 202
    assert first.headers["Location"] == second.headers["Location"]
    names = [r.data["companyName"] for r in SandboxRecord.objects.filter(object_type="customer")]
    assert names.count("Once Only") == 1


def test_an_async_request_that_fails_validation_ends_as_a_failed_job(ns, books):
    answer = ns.post(
        f"{REST}/record/v1/timeBill",
        json=time_bill(books, tranDate="2026-01-05"),
        headers={"Prefer": "respond-async"},
    )
    job_url = answer.headers["Location"]
    assert ns.get(job_url).json()["progress"] == "failed"
    task_id = job_url.rsplit("/", 1)[-1]
    result = ns.get(f"{job_url}/task/{task_id}/result")
    assert result.status_code == 400
    assert error_of(result)["o:errorPath"] == "tranDate"


def test_an_idempotency_key_on_a_synchronous_request_is_refused(ns, books):
    answer = ns.post(
        f"{REST}/record/v1/customer",
        json={"companyName": "Sync", "subsidiary": {"id": books["us"]}},
        headers={"X-NetSuite-Idempotency-Key": "k-1"},
    )
    assert answer.status_code == 400


@needs_postgres
@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_concurrent_async_requests_with_one_idempotency_key_write_one_record(live_sandbox):
    base = live_sandbox.url("netsuite") + "/services/rest"
    from sandbox.core.auth import token_issue

    headers = {"Authorization": "Bearer " + token_issue(system="netsuite", subject="test")}
    with httpx.Client(headers=headers, timeout=30) as http:
        usd = created_id(
            http.post(f"{base}/record/v1/currency", json={"name": "US Dollar", "symbol": "USD"})
        )
        sub = created_id(
            http.post(f"{base}/record/v1/subsidiary", json={"name": "US", "currency": {"id": usd}})
        )
    key = str(uuid.uuid4())
    answers: list[httpx.Response] = []

    def post() -> None:
        with httpx.Client(headers=headers, timeout=30) as http:
            answers.append(
                http.post(
                    f"{base}/record/v1/customer",
                    json={"companyName": "Raced", "subsidiary": {"id": sub}},
                    headers={"Prefer": "respond-async", "X-NetSuite-Idempotency-Key": key},
                )
            )

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    accepted = [a for a in answers if a.status_code == 202]
    # Over the account's concurrency limit a request is refused (429) and may be retried.
    assert all(a.status_code in {202, 429} for a in answers)
    assert len({a.headers["Location"] for a in accepted}) == 1
    assert SandboxRecord.objects.filter(object_type="customer").count() == 1
