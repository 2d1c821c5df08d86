"""The Stripe connector: against the sandbox's Stripe emulator, a fake for exact headers, and
webhook signature verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from decimal import Decimal

import httpx
import orjson
import pytest

from sandbox import storage
from sandbox.models import SandboxRecord
from sandbox.stripe.webhooks import webhook_signature_header
from sync.connectors.base import (
    CONFIGURATION,
    PERMANENT,
    ConnectionConfig,
    SignatureInvalid,
    TransportError,
)
from sync.integrations.stripe.client import StripeConnector, stripe_form_encode
from sync.integrations.stripe.webhooks import stripe_signature_verify
from tests.connectors.conftest import SANDBOX_DATABASES, FakeVendor

BASE = dt.datetime(2026, 1, 4, 12, 0, tzinfo=dt.UTC)


def customers_seed(count: int) -> None:
    storage.record_bulk_insert(
        records=(
            SandboxRecord(
                system="stripe",
                object_type="customer",
                status="",
                data={"name": f"Customer {n}", "metadata": {}},
                created_at=BASE + dt.timedelta(seconds=n),
                updated_at=BASE + dt.timedelta(seconds=n),
            )
            for n in range(count)
        )
    )


@pytest.fixture
def stripe(sandbox_config, sandbox_transport):
    def make(**options) -> StripeConnector:
        return StripeConnector(sandbox_config("stripe"), transport=sandbox_transport, **options)

    return make


@pytest.mark.django_db(databases=SANDBOX_DATABASES)
def test_a_list_pull_follows_starting_after_to_the_last_page(stripe):
    customers_seed(250)
    pages = list(stripe(page_size=100).pull(entity="customers"))
    ids = [c["id"] for p in pages for c in p.records]
    assert len(pages) == 3
    assert len(ids) == len(set(ids)) == 250
    assert (
        pages[-1].position
        == dt.datetime.fromtimestamp(
            int((BASE + dt.timedelta(seconds=249)).timestamp()), dt.UTC
        ).isoformat()
    )


@pytest.mark.django_db(databases=SANDBOX_DATABASES)
def test_an_incremental_pull_reads_objects_created_after_since(stripe):
    customers_seed(30)
    since = (BASE + dt.timedelta(seconds=19)).isoformat()
    records = [c for p in stripe().pull(entity="customers", since=since) for c in p.records]
    assert len(records) == 10


@pytest.mark.django_db(databases=SANDBOX_DATABASES)
def test_a_repeated_create_with_the_same_idempotency_key_makes_one_customer(stripe):
    connector = stripe()
    first = connector.upsert_by_external_id(
        record_type="customers", external_id="CUST-1", body={"name": "Acme"}, idempotency_key="k-1"
    )
    again = connector.upsert_by_external_id(
        record_type="customers", external_id="CUST-1", body={"name": "Acme"}, idempotency_key="k-1"
    )
    assert first == again
    customers = storage.record_queryset(system="stripe", object_type="customer")
    assert customers.count() == 1
    assert customers.get().data["metadata"] == {"ledgerbridge_id": "CUST-1"}


@pytest.mark.django_db(databases=SANDBOX_DATABASES)
def test_a_known_target_id_turns_the_write_into_an_update(stripe):
    connector = stripe()
    created = connector.upsert_by_external_id(
        record_type="customers", external_id="CUST-2", body={"name": "Beta"}
    )
    updated = connector.upsert_by_external_id(
        record_type="customers", external_id="CUST-2", body={"name": "Beta GmbH"}, target_id=created
    )
    assert created == updated
    assert connector.get(record_type="customers", record_id=created)["name"] == "Beta GmbH"


@pytest.mark.django_db(databases=SANDBOX_DATABASES)
def test_a_key_reused_with_other_parameters_is_a_permanent_idempotency_error(stripe):
    connector = stripe()
    connector.upsert_by_external_id(
        record_type="customers", external_id="C", body={"name": "A"}, idempotency_key="same"
    )
    with pytest.raises(TransportError) as caught:
        connector.upsert_by_external_id(
            record_type="customers", external_id="C", body={"name": "B"}, idempotency_key="same"
        )
    assert (caught.value.kind, caught.value.status) == (PERMANENT, 400)


@pytest.mark.django_db(databases=SANDBOX_DATABASES)
def test_invoice_items_become_a_draft_invoice_that_is_finalized(stripe):
    connector = stripe()
    customer = connector.upsert_by_external_id(
        record_type="customers", external_id="CUST-3", body={"name": "Gamma"}
    )
    item = connector.invoice_item_create(
        values={
            "customer": customer,
            "currency": "eur",
            "amount": 125000,
            "description": "Consulting, January",
        },
        idempotency_key="item-1",
    )
    invoice = connector.invoice_create(
        values={
            "customer": customer,
            "pending_invoice_items_behavior": "include",
            "collection_method": "send_invoice",
            "days_until_due": 30,
        },
        idempotency_key="invoice-1",
    )
    finalized = connector.invoice_finalize(invoice_id=invoice["id"], idempotency_key="fin-1")
    assert item["amount"] == 125000
    assert (finalized["status"], finalized["amount_due"]) == ("open", 125000)


@pytest.mark.django_db(databases=SANDBOX_DATABASES)
def test_a_wrong_secret_key_is_a_configuration_failure(sandbox_config, sandbox_transport):
    config = sandbox_config("stripe")
    wrong = ConnectionConfig(**{**config.__dict__, "credentials": {"secret_key": "sk_test_no"}})
    with pytest.raises(TransportError) as caught:
        list(StripeConnector(wrong, transport=sandbox_transport).pull(entity="customers"))
    assert (caught.value.kind, caught.value.status) == (CONFIGURATION, 401)


def test_every_stripe_write_sends_an_idempotency_key_and_a_form_body():
    vendor = FakeVendor(httpx.Response(200, json={"id": "ii_1", "object": "invoiceitem"}))
    config = ConnectionConfig(
        system="stripe",
        base_url="https://api.stripe.example",
        credentials={"secret_key": "sk_test_x"},
    )
    connector = StripeConnector(config, transport=vendor.transport)
    connector.invoice_item_create(
        values={"customer": "cus_1", "amount": 100, "metadata": {"candidate": "IC-9"}},
        idempotency_key="deliv-42",
    )
    connector.upsert_by_external_id(
        record_type="invoiceitems", external_id="IC-10", body={"customer": "cus_1", "amount": 5}
    )
    first, second = vendor.requests
    assert first.headers["Idempotency-Key"] == "deliv-42"
    assert second.headers["Idempotency-Key"].startswith("ledgerbridge-invoiceitems-IC-10-")
    assert first.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert first.content == b"customer=cus_1&amount=100&metadata%5Bcandidate%5D=IC-9"
    assert first.headers["Authorization"] == "Bearer sk_test_x"


def test_a_write_without_an_idempotency_key_is_refused_before_it_is_sent():
    vendor = FakeVendor(httpx.Response(200, json={}))
    config = ConnectionConfig(
        system="stripe",
        base_url="https://api.stripe.example",
        credentials={"secret_key": "sk_test_x"},
    )
    with pytest.raises(ValueError, match="idempotency key"):
        StripeConnector(config, transport=vendor.transport).post(
            "/v1/invoices", values={}, idempotency_key=""
        )
    assert vendor.requests == []


@pytest.mark.parametrize(
    ("values", "encoded"),
    [
        ({"amount": 1250, "currency": "eur"}, "amount=1250&currency=eur"),
        ({"metadata": {"a": "1", "b": None}}, "metadata%5Ba%5D=1&metadata%5Bb%5D="),
        (
            {"lines": [{"price": "p_1", "quantity": 2}]},
            "lines%5B0%5D%5Bprice%5D=p_1&lines%5B0%5D%5Bquantity%5D=2",
        ),
        ({"auto_advance": False}, "auto_advance=false"),
        ({"unit_amount_decimal": Decimal("12.50")}, "unit_amount_decimal=12.50"),
    ],
)
def test_values_are_form_encoded_with_stripes_nesting(values, encoded):
    assert stripe_form_encode(values) == encoded


def test_a_float_amount_is_refused_rather_than_rounded():
    with pytest.raises(TypeError):
        stripe_form_encode({"amount": 12.5})


PAYLOAD = orjson.dumps({"id": "evt_1", "type": "invoice.paid"})
SECRET = "whsec_test_secret"
NOW = 1_767_000_000


def test_a_webhook_signed_by_the_sender_verifies():
    header = webhook_signature_header(secret=SECRET, payload=PAYLOAD, timestamp=NOW - 10)
    stripe_signature_verify(PAYLOAD, header, SECRET, now=NOW)


def test_a_webhook_with_several_signatures_verifies_when_one_matches():
    good = hmac.new(SECRET.encode(), f"{NOW}.".encode() + PAYLOAD, hashlib.sha256).hexdigest()
    stripe_signature_verify(PAYLOAD, f"t={NOW},v1=deadbeef,v1={good},v0=old", SECRET, now=NOW)


@pytest.mark.parametrize(
    ("payload", "header", "secret", "now"),
    [
        (
            PAYLOAD + b" ",
            webhook_signature_header(secret=SECRET, payload=PAYLOAD, timestamp=NOW),
            SECRET,
            NOW,
        ),
        (
            PAYLOAD,
            webhook_signature_header(secret=SECRET, payload=PAYLOAD, timestamp=NOW),
            "whsec_other",
            NOW,
        ),
        (
            PAYLOAD,
            webhook_signature_header(secret=SECRET, payload=PAYLOAD, timestamp=NOW - 301),
            SECRET,
            NOW,
        ),
        (
            PAYLOAD,
            webhook_signature_header(secret=SECRET, payload=PAYLOAD, timestamp=NOW + 301),
            SECRET,
            NOW,
        ),
        (PAYLOAD, f"t={NOW}", SECRET, NOW),
        (PAYLOAD, "", SECRET, NOW),
    ],
    ids=["tampered", "wrong secret", "too old", "from the future", "no signature", "no header"],
)
def test_a_webhook_that_does_not_verify_is_refused(payload, header, secret, now):
    with pytest.raises(SignatureInvalid):
        stripe_signature_verify(payload, header, secret, now=now)


def test_an_object_stripe_cannot_search_asks_the_caller_to_retry_with_the_same_key():
    config = ConnectionConfig(
        system="stripe",
        base_url="https://api.stripe.example",
        credentials={"secret_key": "sk_test_x"},
    )
    vendor = FakeVendor(httpx.Response(200, json={}))
    with pytest.raises(TransportError) as caught:
        StripeConnector(config, transport=vendor.transport).get_by_external_id(
            record_type="invoiceitems", external_id="IC-1"
        )
    assert caught.value.kind == "transient"
    assert vendor.requests == []


def test_a_search_by_external_id_asks_stripe_for_the_metadata_key():
    config = ConnectionConfig(
        system="stripe",
        base_url="https://api.stripe.example",
        credentials={"secret_key": "sk_test_x"},
    )
    vendor = FakeVendor(
        httpx.Response(
            200, json={"object": "search_result", "data": [{"id": "cus_9"}], "has_more": False}
        )
    )
    found = StripeConnector(config, transport=vendor.transport).get_by_external_id(
        record_type="customers", external_id="O'Neil"
    )
    assert found == {"id": "cus_9"}
    (request,) = vendor.requests
    assert request.url.path == "/v1/customers/search"
    assert request.url.params["query"] == "metadata['ledgerbridge_id']:'O\\'Neil'"
