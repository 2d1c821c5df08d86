"""Contract tests of the SCIM 2.0 HR emulator (in-process)."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox import storage
from sandbox.models import SandboxRecord
from sandbox.scim.schema import (
    COSTING_URN,
    ENTERPRISE_URN,
    ERROR_SCHEMA,
    LIST_SCHEMA,
    USER_SCHEMA,
)

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

USERS = "/scim/v2/Users"
START = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)


@pytest.fixture
def scim(client):
    client.headers["Authorization"] = "Bearer sandbox-scim-token"
    return client


def workers_bulk(count: int) -> None:
    storage.record_bulk_insert(
        records=(
            SandboxRecord(
                system="scim",
                object_type="User",
                external_id=f"W{n:05d}",
                status="inactive" if n % 10 == 9 else "active",
                data={
                    "userName": f"worker{n:05d}@firm.example",
                    "name": {"givenName": "Worker", "familyName": f"No{n:05d}"},
                    "displayName": f"Worker {n:05d}",
                    ENTERPRISE_URN: {
                        "employeeNumber": f"E{n:05d}",
                        "costCenter": f"CC-{n % 4}",
                        "organization": "Firm UK Ltd",
                    },
                    COSTING_URN: {"costRate": {"amount": "85.00", "currency": "GBP"}},
                },
                created_at=START,
                updated_at=START + dt.timedelta(hours=n),
            )
            for n in range(count)
        )
    )


def scim_error(answer, status: int, scim_type: str | None = None) -> None:
    body = answer.json()
    assert answer.status_code == status
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type


@pytest.mark.parametrize("authorization", [None, "Bearer wrong"])
def test_a_request_without_the_bearer_token_gets_a_scim_401(client, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    scim_error(client.get(USERS, headers=headers), 401)


def test_users_page_by_start_index_and_count_to_the_last_page(scim):
    workers_bulk(250)
    seen, start = [], 1
    while True:
        body = scim.get(USERS, params={"startIndex": start, "count": 100}).json()
        assert body["schemas"] == [LIST_SCHEMA]
        assert body["totalResults"] == 250
        seen += [u["id"] for u in body["Resources"]]
        if start + body["itemsPerPage"] > body["totalResults"]:
            break
        start += body["itemsPerPage"]
    assert len(seen) == len(set(seen)) == 250
    assert body["itemsPerPage"] == 50


def test_a_user_carries_the_enterprise_and_cost_rate_extensions(scim):
    workers_bulk(1)
    user = scim.get(USERS).json()["Resources"][0]
    assert user["schemas"] == [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        ENTERPRISE_URN,
        COSTING_URN,
    ]
    assert user[ENTERPRISE_URN]["employeeNumber"] == "E00000"
    assert user[COSTING_URN]["costRate"] == {"amount": "85.00", "currency": "GBP"}
    assert user["externalId"] == "W00000"
    assert user["meta"]["lastModified"] == "2025-02-01T00:00:00.000Z"
    assert user["meta"]["location"].endswith(f"/scim/v2/Users/{user['id']}")
    assert scim.get(f"{USERS}/{user['id']}").json()["userName"] == "worker00000@firm.example"


def test_a_last_modified_filter_returns_only_later_changes(scim):
    workers_bulk(48)  # one hour apart
    body = scim.get(USERS, params={"filter": 'meta.lastModified gt "2025-02-02T12:00:00Z"'}).json()
    assert body["totalResults"] == 11  # hours 37..47


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('userName eq "WORKER00003@firm.example"', 1),
        ('externalId eq "W00004"', 1),
        ('externalId eq "w00004"', 0),
        ("active eq false", 2),
        ('urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter eq "CC-1"', 5),
        ('employeeNumber sw "E0001"', 10),
        ('name.familyName co "0001"', 11),  # No00001 and No00010-No00019
        ('active eq true and meta.lastModified ge "2025-02-01T05:00:00Z"', 13),
        ("title pr", 0),
    ],
)
def test_filters_select_the_right_users(scim, expression, expected):
    workers_bulk(20)
    answer = scim.get(USERS, params={"filter": expression})
    assert answer.status_code == 200, answer.text
    assert answer.json()["totalResults"] == expected


@pytest.mark.parametrize(
    "expression",
    [
        'userName eq "a" or userName eq "b"',
        'not (userName eq "a")',
        'emails[type eq "work"]',
        'favouriteColour eq "blue"',
        'userName equals "a"',
        "userName eq",
        'meta.lastModified gt "last tuesday"',
        'active eq "yes"',
    ],
)
def test_an_unsupported_or_invalid_filter_gets_400_invalid_filter(scim, expression):
    scim_error(scim.get(USERS, params={"filter": expression}), 400, "invalidFilter")


def test_a_non_numeric_start_index_is_400_invalid_value(scim):
    scim_error(scim.get(USERS, params={"startIndex": "first"}), 400, "invalidValue")


def test_start_index_below_one_and_negative_count_are_read_as_rfc_7644_says(scim):
    workers_bulk(3)
    body = scim.get(USERS, params={"startIndex": -5, "count": -1}).json()
    assert (body["startIndex"], body["itemsPerPage"], body["totalResults"]) == (1, 0, 3)


def test_an_unknown_user_is_a_scim_404(scim):
    scim_error(scim.get(f"{USERS}/5c1e0000-0000-4000-8000-00000000ffff"), 404)
    scim_error(scim.get(f"{USERS}/not-an-id"), 404)


def test_writes_are_not_offered_by_the_read_only_hr_feed(scim):
    scim_error(scim.post(USERS, json={"userName": "x"}), 405)


def test_discovery_documents_describe_the_extensions(scim):
    config = scim.get("/scim/v2/ServiceProviderConfig").json()
    assert config["filter"]["supported"] is True
    types = scim.get("/scim/v2/ResourceTypes").json()["Resources"][0]
    assert {e["schema"] for e in types["schemaExtensions"]} == {ENTERPRISE_URN, COSTING_URN}


def test_over_the_rate_limit_scim_answers_429_in_its_error_shape(scim):
    scim.put("/_control/faults", json={"systems": {"scim": {"rate_limit": 1}}})
    scim.get(USERS)
    scim_error(scim.get(USERS), 429)


def scim_discover(http) -> dict[str, dict]:
    """What a SCIM client's discover() does (RFC 7644 §4): read the resource types, the schemas
    and the service provider configuration, then resolve every schema and extension a resource
    type names against /Schemas. Returns the resolved schemas by URN; raises on any gap."""
    types = http.get("/scim/v2/ResourceTypes")
    schemas = http.get("/scim/v2/Schemas")
    config = http.get("/scim/v2/ServiceProviderConfig")
    for answer in (types, schemas, config):
        answer.raise_for_status()
    by_urn = {resource["id"]: resource for resource in schemas.json()["Resources"]}
    resolved = {}
    for resource_type in types.json()["Resources"]:
        urns = [resource_type["schema"]] + [e["schema"] for e in resource_type["schemaExtensions"]]
        for urn in urns:
            if urn not in by_urn:
                raise LookupError(f"/Schemas lacks {urn}")
            resolved[urn] = by_urn[urn]
    return resolved


def test_a_scim_clients_discovery_resolves_the_user_schema_and_both_extensions(scim):
    resolved = scim_discover(scim)

    assert set(resolved) == {USER_SCHEMA, ENTERPRISE_URN, COSTING_URN}
    user_attributes = {a["name"] for a in resolved[USER_SCHEMA]["attributes"]}
    assert {"userName", "name", "active", "emails"} <= user_attributes
    enterprise = {a["name"] for a in resolved[ENTERPRISE_URN]["attributes"]}
    assert {"employeeNumber", "costCenter", "manager"} <= enterprise


def test_one_schema_is_served_by_its_urn_and_an_unknown_urn_is_a_scim_404(scim):
    answer = scim.get(f"/scim/v2/Schemas/{ENTERPRISE_URN}")

    assert answer.status_code == 200
    assert answer.json()["id"] == ENTERPRISE_URN
    assert answer.json()["meta"]["resourceType"] == "Schema"
    scim_error(scim.get("/scim/v2/Schemas/urn:example:unknown"), 404)
