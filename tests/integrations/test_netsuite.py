"""The NetSuite connector against the sandbox's REST record service and SuiteQL (in-process)."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox import storage
from sandbox.models import SandboxRecord
from sandbox.netsuite.views import oauth1_parameters, oauth1_signature
from sync.connectors.auth import NetSuiteTokenAuth
from sync.connectors.base import (
    CONFIGURATION,
    INDETERMINATE,
    PERMANENT,
    ConnectionConfig,
    TransportError,
)
from sync.integrations.netsuite.client import (
    NetSuiteConnector,
    record_id_from_location,
    suiteql_timestamp,
)
from tests.connectors.conftest import SANDBOX_DATABASES, SleepRecorder

pytestmark = pytest.mark.django_db(databases=SANDBOX_DATABASES)

BASE = dt.datetime(2026, 1, 3, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def subsidiary() -> str:
    currency = storage.record_create(
        system="netsuite", object_type="currency", data={"name": "British pound", "symbol": "GBP"}
    )
    record = storage.record_create(
        system="netsuite",
        object_type="subsidiary",
        data={"name": "Firm UK Ltd", "currency": str(currency.pk)},
    )
    return str(record.pk)


def customers_seed(count: int, subsidiary: str) -> None:
    storage.record_bulk_insert(
        records=(
            SandboxRecord(
                system="netsuite",
                object_type="customer",
                external_id=f"CUST-{n}",
                status="active",
                data={"companyName": f"Customer {n}", "subsidiary": subsidiary},
                created_at=BASE,
                updated_at=BASE + dt.timedelta(seconds=n),
            )
            for n in range(count)
        )
    )


@pytest.fixture
def netsuite(sandbox_config, sandbox_transport):
    def make(*, oauth2: bool = False, **options) -> NetSuiteConnector:
        config = sandbox_config("netsuite")
        if oauth2:  # without TBA keys the connector falls back to OAuth 2.0 client credentials
            credentials = {
                k: v
                for k, v in config.credentials.items()
                if k in {"client_id", "client_secret", "token_url"}
            }
            config = type(config)(**{**config.__dict__, "credentials": credentials})
        return NetSuiteConnector(
            config, transport=sandbox_transport, http_options={"sleep": SleepRecorder()}, **options
        )

    return make


@pytest.mark.parametrize("oauth2", [False, True], ids=["token-based auth", "oauth2"])
def test_an_upsert_by_external_id_creates_then_updates_the_same_record(
    netsuite, subsidiary, oauth2
):
    connector = netsuite(oauth2=oauth2)
    body = {"companyName": "Acme Ltd", "subsidiary": {"id": subsidiary}}
    created = connector.upsert_by_external_id(
        record_type="customer", external_id="CUST-7", body=body
    )
    updated = connector.upsert_by_external_id(
        record_type="customer",
        external_id="CUST-7",
        body={**body, "companyName": "Acme Holdings Ltd"},
    )
    assert created == updated
    found = connector.get_by_external_id(record_type="customer", external_id="CUST-7")
    assert (found["id"], found["companyName"]) == (created, "Acme Holdings Ltd")


def test_a_record_not_in_netsuite_is_looked_up_as_none(netsuite):
    assert netsuite().get_by_external_id(record_type="customer", external_id="nope") is None


def test_a_create_returns_the_id_from_the_location_header(netsuite, subsidiary):
    record_id = netsuite().create(
        record_type="customer", body={"companyName": "Beta", "subsidiary": {"id": subsidiary}}
    )
    assert (
        storage.record_get(
            system="netsuite", object_type="customer", record_id=int(record_id)
        ).data["companyName"]
        == "Beta"
    )


def test_a_missing_mandatory_field_is_permanent_with_netsuites_error_code(netsuite):
    with pytest.raises(TransportError) as caught:
        netsuite().upsert_by_external_id(
            record_type="customer", external_id="C-1", body={"companyName": "No subsidiary"}
        )
    error = caught.value
    assert (error.kind, error.status, error.vendor_code) == (PERMANENT, 400, "USER_ERROR")
    assert "Subsidiary" in error.message


def test_an_invalid_reference_is_permanent_invalid_content(netsuite):
    with pytest.raises(TransportError) as caught:
        netsuite().upsert_by_external_id(
            record_type="customer",
            external_id="C-1",
            body={"companyName": "X", "subsidiary": {"id": "999999"}},
        )
    assert (caught.value.kind, caught.value.vendor_code) == (PERMANENT, "INVALID_CONTENT")


def test_a_suiteql_pull_pages_with_limit_and_offset_to_the_last_page(netsuite, subsidiary):
    customers_seed(1200, subsidiary)
    pages = list(netsuite(page_size=500).pull(entity="customer"))
    rows = [r for p in pages for r in p.records]
    assert len(pages) == 3
    assert len(rows) == len({r["id"] for r in rows}) == 1200
    assert pages[-1].position == "2026-01-03 10:19:59"


def test_an_incremental_suiteql_pull_reads_only_later_changes(netsuite, subsidiary):
    customers_seed(50, subsidiary)
    pages = list(netsuite().pull(entity="customer", since="2026-01-03 10:00:39"))
    rows = [r for p in pages for r in p.records]
    assert sorted(r["externalid"] for r in rows) == sorted(f"CUST-{n}" for n in range(40, 50))
    assert pages[-1].position == "2026-01-03 10:00:49"


def test_time_bills_are_listed_incrementally_with_their_external_ids(netsuite):
    storage.record_bulk_insert(
        records=(
            SandboxRecord(
                system="netsuite",
                object_type="timeBill",
                external_id=f"KT-TE-{n}" if n % 5 else None,
                status="2",
                data={"tranDate": "2026-01-02", "hours": 7.5},
                created_at=BASE,
                updated_at=BASE + dt.timedelta(seconds=n),
            )
            for n in range(1, 31)
        )
    )
    connector = netsuite(page_size=10, columns={"timeBill": ("id", "externalid")})

    everything = [r for p in connector.pull(entity="timeBill") for r in p.records]
    pages = list(connector.pull(entity="timeBill", since="2026-01-03 10:00:20"))

    assert len(everything) == 30
    assert sum("externalid" in r for r in everything) == 24  # empty values are left out
    later = [r for p in pages for r in p.records]
    assert len(later) == 10
    assert sorted(r["externalid"] for r in later if "externalid" in r) == sorted(
        f"KT-TE-{n}" for n in range(21, 31) if n % 5
    )
    assert pages[-1].position == "2026-01-03 10:00:30"


def test_a_bad_token_signature_is_a_configuration_failure(sandbox_config, sandbox_transport):
    config = sandbox_config("netsuite")
    wrong = type(config)(
        **{**config.__dict__, "credentials": {**config.credentials, "token_secret": "wrong"}}
    )
    with pytest.raises(TransportError) as caught:
        NetSuiteConnector(wrong, transport=sandbox_transport).get_by_external_id(
            record_type="customer", external_id="x"
        )
    assert (caught.value.kind, caught.value.status) == (CONFIGURATION, 401)


def test_the_token_based_signature_matches_rfc_5849_as_netsuite_checks_it():
    auth = NetSuiteTokenAuth(
        account="1234567-sb1",
        consumer_key="ck",
        consumer_secret="cs",
        token_id="ti",
        token_secret="ts",
        nonce=lambda: "n0nce",
        timestamp=lambda: 1700000000,
    )
    url = "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1/customer?limit=5"
    header = auth.headers(method="GET", url=url, http=None)["Authorization"]
    assert header.startswith('OAuth realm="1234567_SB1", ')
    params = oauth1_parameters(header.removeprefix("OAuth "))
    signed = {k: v for k, v in params.items() if k.startswith("oauth_") and k != "oauth_signature"}
    expected = oauth1_signature(
        method="GET",
        url=url.split("?")[0],
        params={**signed, "limit": "5"},
        consumer_secret="cs",
        token_secret="ts",
    )
    assert params["oauth_signature"] == expected


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("2026-01-03 10:00:39", "TO_TIMESTAMP('2026-01-03 10:00:39', 'YYYY-MM-DD HH24:MI:SS')"),
        (
            "2026-01-03T12:00:39+02:00",
            "TO_TIMESTAMP('2026-01-03 10:00:39', 'YYYY-MM-DD HH24:MI:SS')",
        ),
    ],
)
def test_since_becomes_a_suiteql_timestamp(value, literal):
    assert suiteql_timestamp(value) == literal


def test_a_since_that_is_not_a_timestamp_is_refused_before_it_reaches_a_query():
    with pytest.raises(ValueError, match="pull position"):
        suiteql_timestamp("2026-01-03'); DROP")


@pytest.mark.parametrize(
    ("location", "record_id"),
    [("https://x/services/rest/record/v1/customer/42", "42"), ("", None), ("/a/b/eid:X", None)],
)
def test_the_new_record_id_is_read_from_location(location, record_id):
    assert record_id_from_location(location) == record_id


@pytest.fixture
def live_sandbox():
    """A real waitress server on a free loopback port: only a real socket can be dropped."""
    from sandbox.core.app import SandboxApp
    from sandbox.core.faults import FaultBook
    from sandbox.core.server import sandbox_server_start

    running = sandbox_server_start(app=SandboxApp(faults=FaultBook(seed=1)))
    yield running
    running.stop()


@pytest.mark.django_db(databases=SANDBOX_DATABASES, transaction=True)
def test_a_write_whose_answer_is_lost_is_indeterminate_and_resolved_by_lookup(live_sandbox):
    currency = storage.record_create(
        system="netsuite", object_type="currency", data={"name": "Euro", "symbol": "EUR"}
    )
    subsidiary = storage.record_create(
        system="netsuite",
        object_type="subsidiary",
        data={"name": "Firm NL BV", "currency": str(currency.pk)},
    )
    live_sandbox.app.faults.configure(system="netsuite", changes={"drop_rate": 1.0})
    credentials = dict(
        live_sandbox.app.dialect("netsuite").credentials(live_sandbox.url("netsuite"))
    )
    config = ConnectionConfig(
        system="netsuite",
        base_url=credentials.pop("base_url"),
        credentials={k: str(v) for k, v in credentials.items()},
        timeout_seconds=5,
    )
    connector = NetSuiteConnector(config)
    try:
        with pytest.raises(TransportError) as caught:
            connector.upsert_by_external_id(
                record_type="customer",
                external_id="CUST-LOST",
                body={"companyName": "Lost Answer BV", "subsidiary": {"id": str(subsidiary.pk)}},
            )
        assert caught.value.kind == INDETERMINATE
        found = connector.get_by_external_id(record_type="customer", external_id="CUST-LOST")
        assert found is not None
        assert found["companyName"] == "Lost Answer BV"
    finally:
        connector.close()


@pytest.mark.django_db(databases=SANDBOX_DATABASES, transaction=True)
def test_the_concurrency_cap_keeps_a_busy_connector_within_netsuites_concurrency_limit():
    from concurrent.futures import ThreadPoolExecutor

    from sandbox.core.app import SandboxApp
    from sandbox.core.faults import FaultBook
    from sandbox.core.server import sandbox_server_start

    running = sandbox_server_start(app=SandboxApp(faults=FaultBook(seed=1)), threads=8)
    try:
        running.app.faults.configure(
            system="netsuite", changes={"concurrency_limit": 2, "latency_seconds": 0.02}
        )
        credentials = dict(running.app.dialect("netsuite").credentials(running.url("netsuite")))
        config = ConnectionConfig(
            system="netsuite",
            base_url=credentials.pop("base_url"),
            credentials={k: str(v) for k, v in credentials.items()},
            max_concurrency=2,
        )
        connector = NetSuiteConnector(config, http_options={"get_attempts": 1})
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(
                    lambda n: connector.get_by_external_id(
                        record_type="customer", external_id=f"C-{n}"
                    ),
                    range(24),
                )
            )
        connector.close()
    finally:
        running.stop()
    assert answers == [None] * 24  # every one answered: none refused with 429
