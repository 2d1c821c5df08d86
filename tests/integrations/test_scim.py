"""The SCIM connector against the sandbox's SCIM 2.0 emulator (in-process)."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox import storage
from sandbox.models import SandboxRecord
from sync.connectors.base import CONFIGURATION, TransportError
from sync.integrations.scim.client import ENTERPRISE_URN, ScimConnector, scim_string
from tests.connectors.conftest import SANDBOX_DATABASES

pytestmark = pytest.mark.django_db(databases=SANDBOX_DATABASES)

BASE = dt.datetime(2026, 1, 2, 8, 0, tzinfo=dt.UTC)


def users_seed(count: int) -> None:
    storage.record_bulk_insert(
        records=(
            SandboxRecord(
                system="scim",
                object_type="User",
                external_id=f"W-{n}",
                status="active",
                data={
                    "userName": f"worker{n}@firm.example",
                    "displayName": f"Worker {n}",
                    "name": {"givenName": "Worker", "familyName": str(n)},
                    ENTERPRISE_URN: {"employeeNumber": str(1000 + n), "costCenter": "CC-10"},
                },
                created_at=BASE,
                updated_at=BASE + dt.timedelta(seconds=n),
            )
            for n in range(count)
        )
    )


@pytest.fixture
def scim(sandbox_config, sandbox_transport):
    def make(**options) -> ScimConnector:
        return ScimConnector(sandbox_config("scim"), transport=sandbox_transport, **options)

    return make


def test_a_pull_of_users_pages_by_start_index_to_the_last_page(scim):
    users_seed(250)
    pages = list(scim(page_size=100).pull(entity="Users"))
    users = [u for p in pages for u in p.records]
    assert len(pages) == 3
    assert len(users) == len({u["id"] for u in users}) == 250
    assert users[0][ENTERPRISE_URN]["costCenter"] == "CC-10"


def test_an_incremental_pull_filters_on_meta_last_modified(scim):
    users_seed(40)
    pages = list(scim().pull(entity="Users", since="2026-01-02T08:00:29.500Z"))
    users = [u for p in pages for u in p.records]
    assert sorted(u["externalId"] for u in users) == sorted(f"W-{n}" for n in range(30, 40))
    assert pages[-1].position == "2026-01-02T08:00:39.000Z"


def test_a_worker_is_found_by_its_hr_key(scim):
    users_seed(3)
    assert scim().get_by_external_id(external_id="W-2")["userName"] == "worker2@firm.example"
    assert scim().get_by_external_id(external_id='W-"9') is None


def test_a_wrong_token_is_a_configuration_failure(sandbox_config, sandbox_transport):
    config = sandbox_config("scim")
    wrong = type(config)(**{**config.__dict__, "credentials": {"access_token": "nope"}})
    with pytest.raises(TransportError) as caught:
        list(ScimConnector(wrong, transport=sandbox_transport).pull(entity="Users"))
    assert (caught.value.kind, caught.value.status) == (CONFIGURATION, 401)


def test_scim_filter_strings_are_quoted_and_escaped():
    assert scim_string('a"b\\c') == '"a\\"b\\\\c"'
