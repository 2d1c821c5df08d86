"""Contract tests of the Salesforce REST emulator (in-process)."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox import storage
from sandbox.models import SandboxRecord
from sandbox.salesforce import views

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

V = "/salesforce/services/data/v60.0"
UPSERT = f"{V}/sobjects/Account/Ledgerbridge_Id__c"


def token(client, **overrides) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": views.CLIENT_ID,
        "client_secret": views.CLIENT_SECRET,
        **overrides,
    }
    answer = client.post("/salesforce/services/oauth2/token", data=form)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


@pytest.fixture
def sf(client):
    client.headers["Authorization"] = f"Bearer {token(client)}"
    return client


def accounts_bulk(count: int, *, start: dt.datetime | None = None) -> None:
    moment = start or dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    storage.record_bulk_insert(
        records=(
            SandboxRecord(
                system="salesforce",
                object_type="Account",
                external_id=f"CUST-{n:05d}",
                data={"Name": f"Customer {n:05d}", "Type": "Customer"},
                created_at=moment,
                updated_at=moment + dt.timedelta(minutes=n),
            )
            for n in range(count)
        )
    )


def query(sf, soql: str, **headers):
    return sf.get(f"{V}/query", params={"q": soql}, headers=headers)


def error_code(answer) -> str:
    body = answer.json()
    assert isinstance(body, list), body
    assert set(body[0]) == {"message", "errorCode", "fields"}
    return body[0]["errorCode"]


# -- OAuth and sessions ------------------------------------------------------------------------
def test_the_token_endpoint_issues_a_bearer_token_and_the_instance_url(client):
    answer = client.post(
        "/salesforce/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": views.CLIENT_ID,
            "client_secret": views.CLIENT_SECRET,
            "username": views.USERNAME,
            "password": views.PASSWORD + views.SECURITY_TOKEN,
        },
    )
    body = answer.json()
    assert answer.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == "http://sandbox.test/salesforce"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
        ({"client_id": "someone-else"}, "invalid_client_id"),
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"grant_type": "password", "username": views.USERNAME, "password": "x"}, "invalid_grant"),
    ],
)
def test_a_bad_token_request_gets_an_oauth_error(client, form, error):
    base = {
        "grant_type": "client_credentials",
        "client_id": views.CLIENT_ID,
        "client_secret": views.CLIENT_SECRET,
    }
    answer = client.post("/salesforce/services/oauth2/token", data={**base, **form})
    assert answer.status_code == 400
    assert answer.json()["error"] == error


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
def test_a_request_without_a_valid_session_gets_401_invalid_session_id(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer = client.get(f"{V}/query", params={"q": "SELECT Id FROM Account"}, headers=headers)
    assert answer.status_code == 401
    assert error_code(answer) == "INVALID_SESSION_ID"


def test_a_token_of_another_system_is_refused(client, sandbox_app):
    from sandbox.core.auth import token_issue

    foreign = token_issue(system="netsuite", subject="005000000000001AAA")
    answer = client.get(
        f"{V}/query",
        params={"q": "SELECT Id FROM Account"},
        headers={"Authorization": f"Bearer {foreign}"},
    )
    assert answer.status_code == 401


# -- query and paging --------------------------------------------------------------------------
def test_a_query_pages_2000_records_at_a_time_to_the_last_page(sf):
    accounts_bulk(4100)
    first = query(sf, "SELECT Id, Name FROM Account").json()
    assert first["totalSize"] == 4100
    assert len(first["records"]) == 2000
    assert first["done"] is False
    seen = [r["Id"] for r in first["records"]]
    page, pages = first, 1
    while not page["done"]:
        page = sf.get("/salesforce" + page["nextRecordsUrl"]).json()
        seen += [r["Id"] for r in page["records"]]
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 4100
    assert "nextRecordsUrl" not in page


def test_a_batch_size_option_pages_in_smaller_batches(sf):
    accounts_bulk(450)
    first = query(sf, "SELECT Id FROM Account", **{"Sforce-Query-Options": "batchSize=200"}).json()
    assert len(first["records"]) == 200
    second = sf.get("/salesforce" + first["nextRecordsUrl"]).json()
    third = sf.get("/salesforce" + second["nextRecordsUrl"]).json()
    assert (len(second["records"]), len(third["records"]), third["done"]) == (200, 50, True)


def test_records_carry_attributes_and_the_fields_asked_for(sf):
    accounts_bulk(1)
    record = query(sf, "select id, name, lastmodifieddate from account").json()["records"][0]
    assert list(record) == ["attributes", "Id", "Name", "LastModifiedDate"]
    assert record["attributes"]["type"] == "Account"
    assert record["attributes"]["url"] == f"/services/data/v60.0/sobjects/Account/{record['Id']}"
    assert record["Id"].startswith("001")
    assert len(record["Id"]) == 18
    assert record["LastModifiedDate"] == "2025-01-01T00:00:00.000+0000"


def test_a_last_modified_filter_returns_only_later_changes(sf):
    accounts_bulk(100)  # updated one minute apart from 2025-01-01T00:00Z
    answer = query(
        sf,
        "SELECT Id FROM Account WHERE LastModifiedDate > 2025-01-01T01:00:00Z "
        "AND Type = 'Customer' ORDER BY LastModifiedDate DESC LIMIT 10",
    ).json()
    assert answer["totalSize"] == 10
    newest = query(sf, "SELECT Id FROM Account WHERE LastModifiedDate >= 2025-01-01T01:39:00Z")
    assert newest.json()["totalSize"] == 1


def test_an_order_by_with_limit_pages_in_that_order(sf):
    accounts_bulk(30)
    answer = query(
        sf,
        "SELECT Name FROM Account ORDER BY Name DESC LIMIT 25",
        **{"Sforce-Query-Options": "batchSize=200"},
    ).json()
    names = [r["Name"] for r in answer["records"]]
    assert answer["totalSize"] == 25
    assert names == sorted(names, reverse=True)
    assert names[0] == "Customer 00029"


def test_filters_on_picklists_in_lists_and_like_select_the_right_records(sf):
    for n, stage in enumerate(["Closed Won", "Closed Won", "Prospecting", "Closed Lost"]):
        storage.record_create(
            system="salesforce",
            object_type="Opportunity",
            data={"Name": f"Deal {n}", "StageName": stage, "CloseDate": "2025-03-01", "Amount": n},
            status=stage,
        )
    won = query(sf, "SELECT Id FROM Opportunity WHERE StageName = 'Closed Won'").json()
    closed = query(
        sf, "SELECT Id FROM Opportunity WHERE StageName IN ('Closed Won', 'Closed Lost')"
    ).json()
    like = query(sf, "SELECT Id FROM Opportunity WHERE Name LIKE 'deal 3%'").json()
    big = query(sf, "SELECT Name FROM Opportunity WHERE Amount >= 2").json()
    assert (won["totalSize"], closed["totalSize"], like["totalSize"]) == (2, 3, 1)
    assert sorted(r["Name"] for r in big["records"]) == ["Deal 2", "Deal 3"]


def test_count_queries_return_only_the_total(sf):
    accounts_bulk(7)
    answer = query(sf, "SELECT COUNT() FROM Account").json()
    assert answer == {"totalSize": 7, "done": True, "records": []}


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELEC Id FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account LIMIT many", "MALFORMED_QUERY"),
        ("SELECT Id FROM Invoice__x", "INVALID_TYPE"),
        ("SELECT Id, Colour__c FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE LastModifiedDate > '2025-01-01'", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Name = 12", "INVALID_FIELD"),
        ("SELECT Id FROM Account OFFSET 5000", "NUMBER_OUTSIDE_VALID_RANGE"),
        ("SELECT Id FROM Account WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
def test_a_bad_query_gets_a_400_with_salesforces_error_code(sf, soql, code):
    answer = query(sf, soql)
    assert answer.status_code == 400
    assert error_code(answer) == code


def test_a_query_without_q_or_with_a_forged_locator_is_a_400(sf):
    assert sf.get(f"{V}/query").status_code == 400
    forged = sf.get(f"{V}/query/01gnot-base64!-2000")
    assert forged.status_code == 400
    assert error_code(forged) == "INVALID_QUERY_LOCATOR"


def test_an_unknown_api_version_or_path_is_a_404(sf):
    assert sf.get("/salesforce/services/data/v12.0/query", params={"q": "x"}).status_code == 404
    assert error_code(sf.get(f"{V}/nothing-here")) == "NOT_FOUND"


# -- upsert ------------------------------------------------------------------------------------
def test_an_account_upserted_by_external_id_is_created_then_updated(sf):
    created = sf.patch(f"{UPSERT}/CUST-1", json={"Name": "Acme"})
    assert created.status_code == 201, created.text
    assert created.json()["created"] is True
    updated = sf.patch(f"{UPSERT}/CUST-1", json={"Name": "Acme Ltd"})
    assert updated.status_code == 204
    rows = query(sf, "SELECT Id, Name, Ledgerbridge_Id__c FROM Account").json()
    assert rows["totalSize"] == 1
    assert rows["records"][0]["Name"] == "Acme Ltd"
    assert rows["records"][0]["Ledgerbridge_Id__c"] == "CUST-1"


def test_an_upsert_moves_last_modified_date_so_an_incremental_query_sees_it(sf):
    sf.patch(f"{UPSERT}/CUST-1", json={"Name": "Acme"})
    record = storage.record_get_by_external_id(
        system="salesforce", object_type="Account", external_id="CUST-1"
    )
    before = record.updated_at
    sf.patch(f"{UPSERT}/CUST-1", json={"Industry": "Consulting"})
    record.refresh_from_db()
    assert record.updated_at > before
    assert record.data == {"Name": "Acme", "Industry": "Consulting"}


def test_an_opportunity_upsert_links_its_account_and_derives_is_won(sf):
    account = sf.patch(f"{UPSERT}/CUST-1", json={"Name": "Acme"}).json()["id"]
    answer = sf.patch(
        f"{V}/sobjects/Opportunity/Ledgerbridge_Id__c/OPP-1",
        json={
            "Name": "Migration",
            "AccountId": account,
            "StageName": "Closed Won",
            "CloseDate": "2025-02-01",
            "Amount": 125000.5,
            "CurrencyIsoCode": "EUR",
        },
    )
    assert answer.status_code == 201, answer.text
    opportunity = sf.get(f"{V}/sobjects/Opportunity/{answer.json()['id']}").json()
    assert opportunity["IsWon"] is True
    assert opportunity["AccountId"] == account
    soql = "SELECT Id FROM Opportunity WHERE AccountId = '%s'" % account  # noqa: S608, UP031
    by_account = query(sf, soql).json()
    assert by_account["totalSize"] == 1


def test_a_contract_sow_is_created_with_a_contract_number(sf):
    account = sf.patch(f"{UPSERT}/CUST-1", json={"Name": "Acme"}).json()["id"]
    answer = sf.patch(
        f"{V}/sobjects/Contract/Ledgerbridge_Id__c/SOW-1",
        json={"AccountId": account, "Status": "Draft", "Billing_Model__c": "Fixed Fee"},
    )
    assert answer.status_code == 201, answer.text
    contract = sf.get(f"{V}/sobjects/Contract/Ledgerbridge_Id__c/SOW-1").json()
    assert contract["ContractNumber"].isdigit()


@pytest.mark.parametrize(
    ("body", "code", "fields"),
    [
        ({"Colour__c": "red"}, "INVALID_FIELD", []),
        ({"Name": "x", "AnnualRevenue": 5}, "INVALID_FIELD", []),
        ({"Name": 42}, "JSON_PARSER_ERROR", []),
        ({"Name": "x", "Type": "Enemy"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Type"]),
        (
            {"Name": "x", "LastModifiedDate": "2025-01-01T00:00:00Z"},
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["LastModifiedDate"],
        ),
        ({"Name": "x", "ParentId": "banana"}, "MALFORMED_ID", ["ParentId"]),
        (
            {"Name": "x", "ParentId": "001000000099999999"},
            "INVALID_CROSS_REFERENCE_KEY",
            ["ParentId"],
        ),
        ({"Name": "x" * 300}, "STRING_TOO_LONG", ["Name"]),
        ({"Type": "Customer"}, "REQUIRED_FIELD_MISSING", ["Name"]),
        (["Name", "x"], "JSON_PARSER_ERROR", []),
    ],
)  # fmt: skip
def test_an_invalid_upsert_body_gets_a_400_naming_the_problem(sf, body, code, fields):
    answer = sf.patch(f"{UPSERT}/CUST-1", json=body)
    assert answer.status_code == 400
    assert error_code(answer) == code
    assert answer.json()[0]["fields"] == fields
    assert storage.record_queryset(system="salesforce", object_type="Account").count() == 0


def test_malformed_json_gets_json_parser_error_not_a_500(sf):
    answer = sf.patch(
        f"{UPSERT}/CUST-1",
        content=b'{"Name": "Acme",',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert error_code(answer) == "JSON_PARSER_ERROR"


def test_a_wrongly_typed_opportunity_amount_or_date_is_a_400(sf):
    base = {"Name": "Deal", "StageName": "Prospecting", "CloseDate": "2025-02-01"}
    url = f"{V}/sobjects/Opportunity/Ledgerbridge_Id__c/OPP-1"
    assert error_code(sf.patch(url, json={**base, "Amount": "lots"})) == "JSON_PARSER_ERROR"
    assert error_code(sf.patch(url, json={**base, "CloseDate": "2025-13-45"})) == (
        "JSON_PARSER_ERROR"
    )


def test_an_upsert_on_an_unknown_object_or_non_external_id_field_is_a_404(sf):
    assert sf.patch(f"{V}/sobjects/Widget/Ledgerbridge_Id__c/1", json={}).status_code == 404
    answer = sf.patch(f"{V}/sobjects/Account/Name/Acme", json={"Industry": "x"})
    assert answer.status_code == 404
    assert error_code(answer) == "NOT_FOUND"


def test_a_wrong_method_is_a_405_in_salesforces_shape(sf):
    answer = sf.put(f"{UPSERT}/CUST-1", json={"Name": "Acme"})
    assert answer.status_code == 405
    assert error_code(answer) == "METHOD_NOT_ALLOWED"


def test_a_create_with_a_taken_external_id_is_a_duplicate_value(sf):
    sf.patch(f"{UPSERT}/CUST-1", json={"Name": "Acme"})
    body = {"Name": "Acme", "Ledgerbridge_Id__c": "CUST-1"}
    answer = sf.post(f"{V}/sobjects/Account", json=body)
    assert answer.status_code == 400
    assert error_code(answer) == "DUPLICATE_VALUE"


def test_a_deleted_record_is_no_longer_queried(sf):
    created = sf.post(f"{V}/sobjects/Account", json={"Name": "Acme"}).json()
    assert sf.delete(f"{V}/sobjects/Account/{created['id']}").status_code == 204
    assert query(sf, "SELECT Id FROM Account").json()["totalSize"] == 0
    assert sf.get(f"{V}/sobjects/Account/{created['id']}").status_code == 404


# -- daily API limit ---------------------------------------------------------------------------
def test_every_call_reports_api_usage_in_sforce_limit_info(sf):
    answer = query(sf, "SELECT Id FROM Account")
    assert answer.headers["Sforce-Limit-Info"] == "api-usage=1/100000"
    answer = query(sf, "SELECT Id FROM Account")
    assert answer.headers["Sforce-Limit-Info"] == "api-usage=2/100000"


def test_over_the_daily_limit_calls_get_403_request_limit_exceeded(sf):
    sf.put("/_control/faults", json={"systems": {"salesforce": {"rate_limit": 3}}})
    answers = [query(sf, "SELECT Id FROM Account") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 403]
    assert error_code(answers[-1]) == "REQUEST_LIMIT_EXCEEDED"
    assert answers[-1].headers["Sforce-Limit-Info"] == "api-usage=3/3"
    limits = sf.get(f"{V}/limits")
    assert limits.status_code == 403


def test_token_requests_do_not_count_against_the_daily_limit(client):
    client.put("/_control/faults", json={"systems": {"salesforce": {"rate_limit": 1}}})
    for _ in range(3):
        token(client)
    bearer = {"Authorization": f"Bearer {token(client)}"}
    assert client.get(f"{V}/limits", headers=bearer).json()["DailyApiRequests"] == {
        "Max": 1,
        "Remaining": 0,
    }


def test_a_create_posted_to_the_type_with_a_trailing_slash_is_created_as_salesforce_does(sf):
    # simple-salesforce's `SFType.create` posts to `…/sobjects/Contract/` (not installed here:
    # the same request, raw).
    account = sf.post(f"{V}/sobjects/Account/", json={"Name": "Slash Ltd"})
    assert account.status_code == 201
    answer = sf.post(
        f"{V}/sobjects/Contract/",
        json={"AccountId": account.json()["id"], "Status": "Draft", "SOW_Number__c": "SOW-9"},
    )

    assert answer.status_code == 201
    contract = sf.get(f"{V}/sobjects/Contract/{answer.json()['id']}").json()
    assert contract["AccountId"] == account.json()["id"]
    assert contract["SOW_Number__c"] == "SOW-9"
