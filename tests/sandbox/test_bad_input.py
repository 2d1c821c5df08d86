"""Whatever a client sends, the emulators answer 2xx or a vendor-shaped 4xx, never a 500."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox import storage

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SF = "/salesforce/services/data/v60.0"
KANTATA = {"Authorization": "Bearer sandbox-kantata-token"}
SCIM = {"Authorization": "Bearer sandbox-scim-token"}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=8,
)
soql_words = st.sampled_from(
    ["SELECT", "Id", "Name", ",", "FROM", "Account", "Opportunity", "WHERE", "AND", "OR", "=",
     ">", "<=", "!=", "IN", "(", ")", "'x'", "'", "12", "-3.5", "1e999", "9" * 30, "true",
     "null", "2025-01-01", "2025-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "ORDER", "BY",
     "LIMIT", "OFFSET", "DESC", "LIKE", "'%a_'", "Amount", "CloseDate", "LastModifiedDate",
     "COUNT()", "²", "\u0661\u0662"]
)  # fmt: skip


def sf_token(client) -> dict[str, str]:
    from sandbox.salesforce import views

    answer = client.post(
        "/salesforce/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": views.CLIENT_ID,
            "client_secret": views.CLIENT_SECRET,
        },
    )
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def no_server_error(answer) -> None:
    assert answer.status_code < 500, (answer.status_code, answer.text)


@FUZZ
@given(words=st.lists(soql_words, min_size=1, max_size=14))
def test_any_soql_gets_an_answer_or_a_400(client, words):
    no_server_error(
        client.get(f"{SF}/query", params={"q": " ".join(words)}, headers=sf_token(client))
    )


@FUZZ
@given(text=st.text(max_size=60))
def test_any_soql_text_gets_an_answer_or_a_400(client, text):
    no_server_error(client.get(f"{SF}/query", params={"q": text}, headers=sf_token(client)))


@FUZZ
@given(body=json_values, obj=st.sampled_from(["Account", "Opportunity", "Contract"]))
def test_any_upsert_body_gets_an_answer_or_a_4xx(client, body, obj):
    answer = client.patch(
        f"{SF}/sobjects/{obj}/Ledgerbridge_Id__c/K-1", json=body, headers=sf_token(client)
    )
    no_server_error(answer)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["page", "per_page", "only", "updated_after", "created_after", "workspace_id",
             "approved", "status", "user_id", "order", "date_performed_between"]
        ),
        st.text(max_size=25) | st.sampled_from(["99999999999999999999", "²", "\u0661", "-1", "0"]),
        max_size=4,
    ),
    resource=st.sampled_from(["workspaces", "time_entries", "expenses", "stories"]),
)  # fmt: skip
def test_any_kantata_list_parameters_get_an_answer_or_a_400(client, params, resource):
    no_server_error(client.get(f"/kantata/api/v1/{resource}.json", params=params, headers=KANTATA))


@FUZZ
@given(body=json_values)
def test_any_workspace_body_gets_an_answer_or_a_4xx(client, body):
    no_server_error(client.post("/kantata/api/v1/workspaces.json", json=body, headers=KANTATA))
    no_server_error(
        client.post("/kantata/api/v1/workspaces.json", json={"workspace": body}, headers=KANTATA)
    )


@FUZZ
@given(
    text=st.text(max_size=60)
    | st.builds(
        lambda attr, op, value: f"{attr} {op} {value}",
        st.sampled_from(["userName", "meta.lastModified", "active", "id", "employeeNumber", "x"]),
        st.sampled_from(["eq", "gt", "co", "pr", "ne", "zz"]),
        st.sampled_from(['"a"', "true", "12", "null", '"0001-01-01T00:00:00+14:00"', "1e999", '"']),
    ),
    start=st.text(max_size=6),
    count=st.text(max_size=6),
)
def test_any_scim_filter_or_paging_gets_an_answer_or_a_400(client, text, start, count):
    params = {"filter": text, "startIndex": start, "count": count}
    no_server_error(client.get("/scim/v2/Users", params=params, headers=SCIM))


@pytest.mark.parametrize(
    "path",
    [
        "/kantata/api/v1/workspaces/99999999999999999999.json",
        "/kantata/api/v1/change_events.json?since=99999999999999999999",
        "/kantata/api/v1/time_entries.json?page=99999999999999999",
        "/scim/v2/Users/5c1e0000-0000-4000-8000-ffffffffffff",
    ],
)
def test_out_of_range_ids_are_4xx_or_empty(client, path):
    storage.record_create(system="kantata", object_type="workspaces", data={"title": "x"})
    headers = SCIM if path.startswith("/scim") else KANTATA
    no_server_error(client.get(path, headers=headers))


@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "NaN", "1e400"])
def test_a_scim_filter_value_that_is_no_json_number_is_a_400(client, value):
    answer = client.get("/scim/v2/Users", params={"filter": f"userName eq {value}"}, headers=SCIM)
    assert answer.status_code == 400, answer.text
