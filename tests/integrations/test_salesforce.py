"""The Salesforce connector against the sandbox's Salesforce REST emulator (in-process)."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox import storage
from sandbox.models import SandboxRecord
from sync.connectors.base import CONFIGURATION, PERMANENT, TRANSIENT, TransportError
from sync.connectors.http import SALESFORCE_LIMIT_BACKOFF
from sync.integrations.salesforce.client import SalesforceConnector, soql_datetime, soql_string
from tests.connectors.conftest import SANDBOX_DATABASES, SleepRecorder

pytestmark = pytest.mark.django_db(databases=SANDBOX_DATABASES)

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def accounts_seed(count: int, *, start: dt.datetime = BASE, prefix: str = "CUST") -> None:
    storage.record_bulk_insert(
        records=(
            SandboxRecord(
                system="salesforce",
                object_type="Account",
                external_id=f"{prefix}-{n}",
                data={"Name": f"Account {n}", "CurrencyIsoCode": "EUR"},
                created_at=start,
                updated_at=start + dt.timedelta(minutes=n),
            )
            for n in range(count)
        )
    )


@pytest.fixture
def salesforce(sandbox_config, sandbox_transport):
    def make(**options) -> SalesforceConnector:
        http_options = {"sleep": SleepRecorder(), **options.pop("http_options", {})}
        return SalesforceConnector(
            sandbox_config("salesforce"),
            transport=sandbox_transport,
            http_options=http_options,
            **options,
        )

    return make


def test_a_pull_follows_next_records_url_to_the_last_batch(salesforce):
    accounts_seed(450)
    pages = list(salesforce(batch_size=200).pull(entity="Account"))
    assert len(pages) == 3
    assert [p.next_cursor is None for p in pages] == [False, False, True]
    ids = [r["Id"] for p in pages for r in p.records]
    assert len(ids) == len(set(ids)) == 450


def test_an_incremental_pull_reads_only_records_modified_after_since(salesforce):
    accounts_seed(30)
    since = "2026-01-01T00:19:30.000+0000"
    pages = list(salesforce().pull(entity="Account", since=since))
    names = sorted(r["Name"] for p in pages for r in p.records)
    assert len(names) == 10  # minutes 20..29
    assert pages[-1].position == "2026-01-01T00:29:00.000+0000"


def test_an_incremental_pull_with_nothing_new_keeps_the_old_pull_position(salesforce):
    accounts_seed(3)
    since = "2026-02-01T00:00:00.000+0000"
    pages = list(salesforce().pull(entity="Account", since=since))
    assert sum(len(p.records) for p in pages) == 0
    assert pages[-1].position == since


def test_a_pull_resumes_from_a_pages_cursor(salesforce):
    accounts_seed(450)
    connector = salesforce(batch_size=200)
    first = next(iter(connector.pull(entity="Account")))
    rest = list(connector.pull(entity="Account", cursor=first.next_cursor))
    ids = [r["Id"] for r in first.records] + [r["Id"] for p in rest for r in p.records]
    assert len(set(ids)) == 450


def test_an_upsert_creates_then_updates_the_same_record(salesforce):
    connector = salesforce()
    created = connector.upsert_by_external_id(
        record_type="Account", external_id="CUST 1 'a'", body={"Name": "Acme"}
    )
    updated = connector.upsert_by_external_id(
        record_type="Account", external_id="CUST 1 'a'", body={"Name": "Acme Ltd"}
    )
    assert created == updated
    found = connector.get_by_external_id(record_type="Account", external_id="CUST 1 'a'")
    assert found["Id"] == found["id"] == created
    assert found["Name"] == "Acme Ltd"


def test_a_record_not_in_salesforce_is_looked_up_as_none(salesforce):
    assert salesforce().get_by_external_id(record_type="Account", external_id="nope") is None


def test_a_record_salesforce_refuses_is_a_permanent_failure(salesforce):
    with pytest.raises(TransportError) as caught:
        salesforce().upsert_by_external_id(
            record_type="Opportunity", external_id="OPP-1", body={"Name": "Deal"}
        )
    assert (caught.value.kind, caught.value.vendor_code) == (PERMANENT, "REQUIRED_FIELD_MISSING")


def test_a_field_the_org_does_not_have_is_a_configuration_failure(salesforce):
    with pytest.raises(TransportError) as caught:
        salesforce().upsert_by_external_id(
            record_type="Account", external_id="CUST-1", body={"Name": "Acme", "Colour__c": "red"}
        )
    assert (caught.value.kind, caught.value.vendor_code) == (CONFIGURATION, "INVALID_FIELD")


def test_a_wrong_client_secret_is_a_configuration_failure(sandbox_config, sandbox_transport):
    config = sandbox_config("salesforce")
    wrong = type(config)(
        **{**config.__dict__, "credentials": {**config.credentials, "client_secret": "wrong"}}
    )
    with pytest.raises(TransportError) as caught:
        list(SalesforceConnector(wrong, transport=sandbox_transport).pull(entity="Account"))
    assert caught.value.kind == CONFIGURATION


def test_the_daily_request_limit_is_transient_with_salesforces_backoff(salesforce, sandbox_app):
    sandbox_app.faults.configure(system="salesforce", changes={"rate_limit": 2})
    connector = salesforce(http_options={"get_attempts": 1})
    connector.get_by_external_id(record_type="Account", external_id="a")
    connector.get_by_external_id(record_type="Account", external_id="b")
    with pytest.raises(TransportError) as caught:
        connector.get_by_external_id(record_type="Account", external_id="c")
    error = caught.value
    assert (error.kind, error.status, error.vendor_code) == (
        TRANSIENT,
        403,
        "REQUEST_LIMIT_EXCEEDED",
    )
    assert error.retry_after == SALESFORCE_LIMIT_BACKOFF
    assert connector.http.api_usage == (2, 2)


def test_injected_server_errors_on_a_read_are_retried_then_reported_transient(
    salesforce, sandbox_app
):
    sandbox_app.faults.configure(system="salesforce", changes={"error_rate": 1.0})
    sleeps = SleepRecorder()
    with pytest.raises(TransportError) as caught:
        list(salesforce(http_options={"sleep": sleeps, "get_attempts": 3}).pull(entity="Account"))
    assert caught.value.kind == TRANSIENT
    assert len(sleeps.calls) == 2


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("2026-01-31T10:00:00.750+0000", "2026-01-31T10:00:00Z"),
        ("2026-01-31T12:00:00+02:00", "2026-01-31T10:00:00Z"),
        ("2026-01-31T10:00:00Z", "2026-01-31T10:00:00Z"),
    ],
)
def test_since_becomes_a_utc_soql_datetime_cut_to_whole_seconds(value, literal):
    assert soql_datetime(value) == literal


def test_soql_strings_are_escaped():
    assert soql_string("O'Brien \\ Co") == "'O\\'Brien \\\\ Co'"
