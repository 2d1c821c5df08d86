"""The sandbox served for real: waitress on a free loopback port, the indeterminate write."""

from __future__ import annotations

import httpx
import pytest

from sandbox import storage
from sandbox.salesforce import views as salesforce

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)


def salesforce_token(base: str) -> str:
    answer = httpx.post(
        f"{base}/salesforce/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": salesforce.CLIENT_ID,
            "client_secret": salesforce.CLIENT_SECRET,
        },
        timeout=5,
    )
    return answer.json()["access_token"]


def test_a_committed_write_whose_answer_is_dropped_leaves_the_record_written(live_sandbox):
    base = live_sandbox.base_url
    control = httpx.put(
        f"{base}/_control/faults",
        json={"seed": 3, "systems": {"salesforce": {"drop_rate": 1.0}}},
        timeout=5,
    )
    assert control.status_code == 200
    headers = {"Authorization": f"Bearer {salesforce_token(base)}"}

    with pytest.raises(httpx.TransportError):
        httpx.patch(
            f"{base}/salesforce/services/data/v60.0/sobjects/Account/Ledgerbridge_Id__c/CUST-9",
            json={"Name": "Indeterminate Ltd"},
            headers=headers,
            timeout=5,
        )

    record = storage.record_get_by_external_id(
        system="salesforce", object_type="Account", external_id="CUST-9"
    )
    assert record is not None
    assert record.data["Name"] == "Indeterminate Ltd"


def test_a_client_that_looks_up_after_a_dropped_answer_finds_the_record_and_creates_no_second(
    live_sandbox,
):
    base = live_sandbox.base_url
    httpx.put(
        f"{base}/_control/faults",
        json={"systems": {"kantata": {"drop_rate": 1.0}}},
        timeout=5,
    )
    headers = {"Authorization": "Bearer sandbox-kantata-token"}
    with pytest.raises(httpx.TransportError):
        httpx.post(
            f"{base}/kantata/api/v1/workspaces.json",
            json={"workspace": {"title": "Migration", "external_reference": "PRJ-7"}},
            headers=headers,
            timeout=5,
        )
    found = httpx.get(
        f"{base}/kantata/api/v1/workspaces.json",
        params={"external_reference": "PRJ-7"},
        headers=headers,
        timeout=5,
    )
    assert found.status_code == 200
    assert found.json()["count"] == 1
