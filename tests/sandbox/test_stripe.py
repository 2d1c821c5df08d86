"""Contract tests of the Stripe sandbox: auth, form bodies, cursor lists, invoices, idempotency."""

from __future__ import annotations

import datetime as dt
import threading
import time

import httpx
import pytest
from django.db import transaction

from sandbox.core.protocol import Request
from sandbox.models import SandboxEvent, SandboxIdempotencyKey, SandboxRecord
from sandbox.stripe import api, clock, idempotency

pytestmark = pytest.mark.django_db(databases=["default", "sandbox"])

V1 = "/stripe/v1"

# SQLite's in-memory test database (shared cache) refuses concurrent writers outright
# ("database table is locked"), so races between real threads are tested on PostgreSQL.
needs_postgres = pytest.mark.integration


@pytest.fixture
def stripe(client) -> httpx.Client:
    client.headers["Authorization"] = f"Bearer {api.SECRET_KEY}"
    return client


def error_of(answer: httpx.Response) -> dict:
    body = answer.json()
    assert set(body) == {"error"}
    return body["error"]


def customer(stripe, **fields) -> dict:
    answer = stripe.post(f"{V1}/customers", data={"name": "Acme Corp", **fields})
    assert answer.status_code == 200, answer.text
    return answer.json()


def invoice_with_items(stripe, cus: dict, *amounts: int, **fields) -> dict:
    for amount in amounts:
        item = stripe.post(
            f"{V1}/invoiceitems",
            data={"customer": cus["id"], "amount": amount, "currency": "usd"},
        )
        assert item.status_code == 200, item.text
    answer = stripe.post(
        f"{V1}/invoices",
        data={"customer": cus["id"], "pending_invoice_items_behavior": "include", **fields},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- auth and input ----------------------------------------------------------------------------
def test_a_request_without_an_api_key_is_a_401_in_stripes_shape(client):
    answer = client.get(f"{V1}/customers")
    assert answer.status_code == 401
    error = error_of(answer)
    assert error["type"] == "invalid_request_error"
    assert "You did not provide an API key" in error["message"]


def test_a_wrong_api_key_is_refused_and_shown_masked(client):
    wrong = {"Authorization": "Bearer sk_test_wrong_key_1234"}
    answer = client.get(f"{V1}/customers", headers=wrong)
    assert answer.status_code == 401
    assert "sk_test_" in error_of(answer)["message"]
    assert "wrong_key" not in error_of(answer)["message"]


def test_the_secret_key_is_accepted_as_basic_auth_user_as_curl_u_sends_it(client):
    answer = client.get(f"{V1}/customers", auth=(api.SECRET_KEY, ""))
    assert answer.status_code == 200


def test_a_customer_is_created_from_a_form_body_with_nested_metadata(stripe):
    created = customer(
        stripe, **{"metadata[crm_id]": "001A", "address[city]": "Berlin", "email": "ap@acme.test"}
    )
    assert created["id"].startswith("cus_")
    assert created["object"] == "customer"
    assert created["metadata"] == {"crm_id": "001A"}
    assert created["address"]["city"] == "Berlin"
    fetched = stripe.get(f"{V1}/customers/{created['id']}").json()
    assert fetched == created


def test_an_empty_metadata_value_unsets_that_key(stripe):
    created = customer(stripe, **{"metadata[a]": "1", "metadata[b]": "2"})
    answer = stripe.post(f"{V1}/customers/{created['id']}", data={"metadata[a]": ""})
    assert answer.json()["metadata"] == {"b": "2"}


@pytest.mark.parametrize(
    ("data", "code", "param"),
    [
        ({"name": "X", "favourite_colour": "blue"}, "parameter_unknown", "favourite_colour"),
        ({"name": "X", "address[planet]": "Mars"}, "parameter_unknown", "address[planet]"),
        ({"name": "X", "tax_exempt": "sometimes"}, None, "tax_exempt"),
    ],
)
def test_bad_customer_parameters_are_400_invalid_request_errors(stripe, data, code, param):
    answer = stripe.post(f"{V1}/customers", data=data)
    assert answer.status_code == 400
    error = error_of(answer)
    assert error["type"] == "invalid_request_error"
    assert error.get("code") == code
    assert error["param"] == param


def test_a_non_integer_amount_is_parameter_invalid_integer(stripe):
    cus = customer(stripe)
    answer = stripe.post(
        f"{V1}/invoiceitems", data={"customer": cus["id"], "amount": "12.50", "currency": "usd"}
    )
    assert answer.status_code == 400
    assert error_of(answer)["code"] == "parameter_invalid_integer"
    assert error_of(answer)["param"] == "amount"


def test_a_missing_required_parameter_is_parameter_missing(stripe):
    answer = stripe.post(f"{V1}/invoices", data={})
    assert answer.status_code == 400
    assert error_of(answer)["code"] == "parameter_missing"
    assert error_of(answer)["param"] == "customer"


def test_a_json_body_is_refused_with_a_400_not_a_500(stripe):
    answer = stripe.post(
        f"{V1}/customers", content=b'{"name": "X"}', headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert error_of(answer)["type"] == "invalid_request_error"


def test_a_malformed_nested_parameter_name_is_a_400(stripe):
    answer = stripe.post(
        f"{V1}/customers",
        content=b"metadata[a=1",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400


def test_a_missing_object_is_404_resource_missing(stripe):
    answer = stripe.get(f"{V1}/customers/cus_00000000099999")
    assert answer.status_code == 404
    error = error_of(answer)
    assert error["code"] == "resource_missing"
    assert error["param"] == "id"


def test_an_unknown_url_is_stripes_unrecognized_request_url(stripe):
    answer = stripe.get(f"{V1}/spaceships")
    assert answer.status_code == 404
    assert error_of(answer)["message"].startswith("Unrecognized request URL (GET: /v1/spaceships)")


# -- lists -------------------------------------------------------------------------------------
def test_cursor_lists_page_newest_first_to_the_last_page_and_back(stripe):
    ids = [customer(stripe, name=f"C{n}")["id"] for n in range(7)]
    seen, cursor, pages = [], None, []
    while True:
        query = {"limit": 3, **({"starting_after": cursor} if cursor else {})}
        page = stripe.get(f"{V1}/customers", params=query).json()
        assert page["object"] == "list"
        assert page["url"] == "/v1/customers"
        seen.extend(c["id"] for c in page["data"])
        pages.append(page)
        if not page["has_more"]:
            break
        cursor = page["data"][-1]["id"]
    assert seen == list(reversed(ids))
    assert [len(p["data"]) for p in pages] == [3, 3, 1]
    back = stripe.get(f"{V1}/customers", params={"limit": 3, "ending_before": seen[3]}).json()
    assert [c["id"] for c in back["data"]] == seen[:3]
    assert back["has_more"] is False


def test_a_limit_over_100_is_refused(stripe):
    answer = stripe.get(f"{V1}/customers", params={"limit": 101})
    assert answer.status_code == 400
    assert error_of(answer)["param"] == "limit"


def test_lists_filter_by_customer_status_and_email(stripe):
    acme = customer(stripe, email="ap@acme.test")
    globex = customer(stripe, name="Globex")
    draft = invoice_with_items(stripe, acme, 1000)
    open_invoice = invoice_with_items(stripe, globex, 500)
    stripe.post(f"{V1}/invoices/{open_invoice['id']}/finalize")
    by_customer = stripe.get(f"{V1}/invoices", params={"customer": acme["id"]}).json()
    assert [i["id"] for i in by_customer["data"]] == [draft["id"]]
    by_status = stripe.get(f"{V1}/invoices", params={"status": "open"}).json()
    assert [i["id"] for i in by_status["data"]] == [open_invoice["id"]]
    by_email = stripe.get(f"{V1}/customers", params={"email": "ap@acme.test"}).json()
    assert [c["id"] for c in by_email["data"]] == [acme["id"]]


# -- invoices ----------------------------------------------------------------------------------
def test_an_invoice_goes_from_draft_to_open_to_paid(stripe):
    cus = customer(stripe, **{"invoice_settings[default_payment_method]": "pm_card_visa"})
    draft = invoice_with_items(stripe, cus, 12000, 3050)
    assert draft["status"] == "draft"
    assert draft["total"] == 15050
    assert [line["amount"] for line in draft["lines"]["data"]] == [12000, 3050]
    assert draft["number"] is None
    finalized = stripe.post(f"{V1}/invoices/{draft['id']}/finalize").json()
    assert finalized["status"] == "open"
    assert finalized["number"] == f"{cus['invoice_prefix']}-0001"
    assert finalized["amount_due"] == 15050
    paid = stripe.post(f"{V1}/invoices/{draft['id']}/pay").json()
    assert paid["status"] == "paid"
    assert paid["paid"] is True
    assert paid["amount_paid"] == 15050
    assert paid["amount_remaining"] == 0
    types = [e["type"] for e in stripe.get(f"{V1}/events", params={"limit": 100}).json()["data"]]
    for expected in (
        "customer.created",
        "invoiceitem.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ):
        assert expected in types


def test_an_invoice_item_can_be_added_to_a_draft_but_not_to_a_finalized_invoice(stripe):
    cus = customer(stripe)
    draft = stripe.post(f"{V1}/invoices", data={"customer": cus["id"], "currency": "eur"}).json()
    added = stripe.post(
        f"{V1}/invoiceitems",
        data={
            "customer": cus["id"],
            "invoice": draft["id"],
            "unit_amount": 2500,
            "quantity": 4,
            "currency": "eur",
            "description": "Consulting days",
        },
    )
    assert added.json()["amount"] == 10000
    assert stripe.get(f"{V1}/invoices/{draft['id']}").json()["total"] == 10000
    stripe.post(f"{V1}/invoices/{draft['id']}/finalize")
    late = stripe.post(
        f"{V1}/invoiceitems",
        data={"customer": cus["id"], "invoice": draft["id"], "amount": 1, "currency": "eur"},
    )
    assert late.status_code == 400
    assert error_of(late)["code"] == "invoice_not_editable"


def test_finalizing_twice_is_refused_and_an_open_invoice_can_be_voided(stripe):
    draft = invoice_with_items(stripe, customer(stripe), 700)
    assert stripe.post(f"{V1}/invoices/{draft['id']}/finalize").status_code == 200
    again = stripe.post(f"{V1}/invoices/{draft['id']}/finalize")
    assert again.status_code == 400
    voided = stripe.post(f"{V1}/invoices/{draft['id']}/void").json()
    assert voided["status"] == "void"
    assert voided["status_transitions"]["voided_at"] is not None
    assert stripe.post(f"{V1}/invoices/{draft['id']}/pay").status_code == 400


def test_a_zero_total_invoice_is_paid_when_finalized(stripe):
    cus = customer(stripe)
    draft = stripe.post(f"{V1}/invoices", data={"customer": cus["id"]}).json()
    assert stripe.post(f"{V1}/invoices/{draft['id']}/finalize").json()["status"] == "paid"


def test_a_declined_card_is_a_402_card_error_and_the_failed_attempt_is_kept(stripe):
    cus = customer(stripe)
    draft = invoice_with_items(stripe, cus, 990)
    stripe.post(f"{V1}/invoices/{draft['id']}/finalize")
    answer = stripe.post(
        f"{V1}/invoices/{draft['id']}/pay",
        data={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"},
    )
    assert answer.status_code == 402
    error = error_of(answer)
    assert error["type"] == "card_error"
    assert error["code"] == "card_declined"
    assert error["decline_code"] == "insufficient_funds"
    invoice = stripe.get(f"{V1}/invoices/{draft['id']}").json()
    assert invoice["status"] == "open"
    assert invoice["attempt_count"] == 1
    failed = stripe.get(f"{V1}/events", params={"type": "invoice.payment_failed"}).json()
    assert len(failed["data"]) == 1


def test_paid_out_of_band_marks_an_invoice_paid_without_a_payment_method(stripe):
    draft = invoice_with_items(
        stripe, customer(stripe), 100, collection_method="send_invoice", days_until_due=30
    )
    finalized = stripe.post(f"{V1}/invoices/{draft['id']}/finalize").json()
    assert finalized["due_date"] == finalized["status_transitions"]["finalized_at"] + 30 * 86400
    paid = stripe.post(f"{V1}/invoices/{draft['id']}/pay", data={"paid_out_of_band": "true"})
    assert paid.json()["paid_out_of_band"] is True


def test_send_invoice_without_days_until_due_is_refused(stripe):
    answer = stripe.post(
        f"{V1}/invoices",
        data={"customer": customer(stripe)["id"], "collection_method": "send_invoice"},
    )
    assert answer.status_code == 400
    assert error_of(answer)["param"] == "days_until_due"


# -- idempotency -------------------------------------------------------------------------------
def test_a_repeated_idempotency_key_replays_the_first_answer_and_creates_once(stripe):
    headers = {"Idempotency-Key": "create-acme-1"}
    first = stripe.post(f"{V1}/customers", data={"name": "Acme"}, headers=headers)
    second = stripe.post(f"{V1}/customers", data={"name": "Acme"}, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert SandboxRecord.objects.filter(system="stripe", object_type="customer").count() == 1
    assert SandboxEvent.objects.filter(system="stripe", action="customer.created").count() == 1


def test_the_same_key_with_other_parameters_is_an_idempotency_error(stripe):
    headers = {"Idempotency-Key": "k-params"}
    stripe.post(f"{V1}/customers", data={"name": "Acme"}, headers=headers)
    answer = stripe.post(f"{V1}/customers", data={"name": "Globex"}, headers=headers)
    assert answer.status_code == 400
    assert error_of(answer)["type"] == "idempotency_error"


def test_the_order_of_form_fields_does_not_change_the_parameters(stripe):
    headers = {"Idempotency-Key": "k-order", "Content-Type": "application/x-www-form-urlencoded"}
    first = stripe.post(f"{V1}/customers", content=b"name=A&email=a%40x.test", headers=headers)
    second = stripe.post(f"{V1}/customers", content=b"email=a%40x.test&name=A", headers=headers)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first.json()["id"]


def test_an_error_from_execution_is_replayed_too(stripe):
    draft = invoice_with_items(stripe, customer(stripe), 100)
    stripe.post(f"{V1}/invoices/{draft['id']}/finalize")
    headers = {"Idempotency-Key": "finalize-again"}
    first = stripe.post(f"{V1}/invoices/{draft['id']}/finalize", headers=headers)
    second = stripe.post(f"{V1}/invoices/{draft['id']}/finalize", headers=headers)
    assert first.status_code == second.status_code == 400
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()


def test_a_request_refused_for_its_parameters_saves_nothing_so_the_corrected_one_runs(stripe):
    headers = {"Idempotency-Key": "k-validation"}
    bad = stripe.post(f"{V1}/customers", data={"name": "A", "colour": "red"}, headers=headers)
    assert bad.status_code == 400
    good = stripe.post(f"{V1}/customers", data={"name": "A"}, headers=headers)
    assert good.status_code == 200
    assert "Idempotent-Replayed" not in good.headers


def test_an_injected_5xx_that_never_executed_is_not_saved(stripe, sandbox_app):
    sandbox_app.faults.configure(system="stripe", changes={"error_rate": 1.0})
    headers = {"Idempotency-Key": "k-5xx"}
    failed = stripe.post(f"{V1}/customers", data={"name": "A"}, headers=headers)
    assert failed.status_code >= 500
    assert error_of(failed)["type"] == "api_error"
    sandbox_app.faults.configure(system="stripe", changes={"error_rate": 0.0})
    retried = stripe.post(f"{V1}/customers", data={"name": "A"}, headers=headers)
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers


def _in_flight_claim(key: str, path: str, params: dict) -> None:
    request = Request(
        method="POST",
        path=path,
        query_string="",
        headers={},
        body=b"",
        base_url="http://sandbox.test/stripe",
    )
    SandboxIdempotencyKey.objects.create(
        system="stripe",
        key=key,
        request_fingerprint=idempotency.request_fingerprint(request, params),
        status_code=idempotency.IN_FLIGHT,
        response_headers={},
        response_body=b"",
        created_at=clock.now(),
    )


def test_a_key_still_in_flight_is_a_409(stripe):
    _in_flight_claim("k-busy", "/v1/customers", {"name": "Acme"})
    answer = stripe.post(
        f"{V1}/customers", data={"name": "Acme"}, headers={"Idempotency-Key": "k-busy"}
    )
    assert answer.status_code == 409
    assert error_of(answer)["code"] == "idempotency_key_in_use"
    assert not SandboxRecord.objects.filter(system="stripe", object_type="customer").exists()


def test_a_key_abandoned_in_flight_by_a_dead_process_is_taken_over(stripe, monkeypatch):
    _in_flight_claim("k-dead", "/v1/customers", {"name": "Acme"})
    later = clock.now() + dt.timedelta(minutes=5)
    monkeypatch.setattr(clock, "now", lambda: later)
    answer = stripe.post(
        f"{V1}/customers", data={"name": "Acme"}, headers={"Idempotency-Key": "k-dead"}
    )
    assert answer.status_code == 200


def test_keys_expire_after_24_hours_and_may_then_be_reused(stripe, monkeypatch):
    start = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(clock, "now", lambda: start)
    headers = {"Idempotency-Key": "k-day"}
    first = stripe.post(f"{V1}/customers", data={"name": "Day one"}, headers=headers)
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(hours=23))
    refused = stripe.post(f"{V1}/customers", data={"name": "Day two"}, headers=headers)
    assert refused.status_code == 400
    monkeypatch.setattr(clock, "now", lambda: start + dt.timedelta(hours=24, seconds=1))
    reused = stripe.post(f"{V1}/customers", data={"name": "Day two"}, headers=headers)
    assert reused.status_code == 200
    assert reused.json()["id"] != first.json()["id"]
    assert SandboxIdempotencyKey.objects.filter(system="stripe").count() == 1


def test_an_idempotency_key_over_255_characters_is_refused(stripe):
    answer = stripe.post(
        f"{V1}/customers", data={"name": "A"}, headers={"Idempotency-Key": "k" * 256}
    )
    assert answer.status_code == 400


def test_over_the_rate_limit_the_answer_is_429_rate_limit(stripe, sandbox_app):
    sandbox_app.faults.configure(
        system="stripe", changes={"rate_limit": 1, "rate_window_seconds": 3600}
    )
    assert stripe.get(f"{V1}/customers").status_code == 200
    answer = stripe.get(f"{V1}/customers")
    assert answer.status_code == 429
    assert error_of(answer)["code"] == "rate_limit"


@needs_postgres
@pytest.mark.django_db(databases=["default", "sandbox"], transaction=True)
def test_a_concurrent_request_with_an_in_flight_key_gets_409_over_real_http(live_sandbox):
    """Thread A's finalize holds the key while it waits for the customer row, which the test
    keeps locked; the same key from the main thread meanwhile is a 409."""
    base = live_sandbox.url("stripe") + "/v1"
    auth = {"Authorization": f"Bearer {api.SECRET_KEY}"}
    with httpx.Client(headers=auth, timeout=30) as http:
        cus = http.post(f"{base}/customers", data={"name": "Acme"}).json()
        http.post(
            f"{base}/invoiceitems", data={"customer": cus["id"], "amount": 100, "currency": "usd"}
        )
        draft = http.post(
            f"{base}/invoices",
            data={"customer": cus["id"], "pending_invoice_items_behavior": "include"},
        )
        invoice_id = draft.json()["id"]
    key = {"Idempotency-Key": "finalize-race"}
    locked, release = threading.Event(), threading.Event()

    def hold_customer_lock() -> None:
        from django.db import connections

        with transaction.atomic(using="sandbox"):
            SandboxRecord.objects.select_for_update().get(pk=int(cus["id"][4:]))
            locked.set()
            release.wait(30)
        connections["sandbox"].close()

    answers: dict[str, httpx.Response] = {}

    def finalize() -> None:
        with httpx.Client(headers={**auth, **key}, timeout=30) as http:
            answers["a"] = http.post(f"{base}/invoices/{invoice_id}/finalize")

    holder = threading.Thread(target=hold_customer_lock)
    holder.start()
    assert locked.wait(10)
    first = threading.Thread(target=finalize)
    first.start()
    deadline = time.monotonic() + 10
    while not SandboxIdempotencyKey.objects.filter(key="finalize-race").exists():
        assert time.monotonic() < deadline, "the first request never claimed its key"
        time.sleep(0.02)
    with httpx.Client(headers={**auth, **key}, timeout=30) as http:
        busy = http.post(f"{base}/invoices/{invoice_id}/finalize")
    release.set()
    first.join(30)
    holder.join(30)
    assert busy.status_code == 409
    assert error_of(busy)["code"] == "idempotency_key_in_use"
    assert answers["a"].status_code == 200
    with httpx.Client(headers={**auth, **key}, timeout=30) as http:
        replay = http.post(f"{base}/invoices/{invoice_id}/finalize")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["number"] == answers["a"].json()["number"]


def test_an_invoice_written_by_the_generator_reads_and_pays_like_one_made_through_the_api(
    stripe,
):
    cus = customer(stripe)
    cus_pk = int(cus["id"].split("_")[1])
    moment = clock.now()
    record = SandboxRecord.objects.create(
        system="stripe",
        object_type="invoice",
        parent_id=cus_pk,
        status="open",
        created_at=moment,
        updated_at=moment,
        data={
            "object": "invoice",
            "number": "LB-2026-0001",
            "customer": str(cus_pk),
            "currency": "usd",
            "status": "open",
            "collection_method": "send_invoice",
            "total": 3000,
            "amount_due": 3000,
            "amount_paid": 0,
            "amount_remaining": 3000,
            "lines": {
                "object": "list",
                "data": [
                    {
                        "object": "line_item",
                        "description": "Design",
                        "quantity": 1,
                        "amount": 1000,
                        "currency": "usd",
                        "metadata": {},
                    },
                    {
                        "object": "line_item",
                        "description": "Build",
                        "quantity": 2,
                        "amount": 2000,
                        "currency": "usd",
                        "metadata": {},
                    },
                ],
                "has_more": False,
            },
            "metadata": {"project_key": "P-1"},
        },
    )
    invoice_id = f"in_{record.pk:014d}"
    body = stripe.get(f"{V1}/invoices/{invoice_id}").json()
    assert body["customer"] == cus["id"]
    assert [line["amount"] for line in body["lines"]["data"]] == [1000, 2000]
    page = stripe.get(f"{V1}/invoices/{invoice_id}/lines", params={"limit": 1}).json()
    assert page["has_more"] is True
    rest = stripe.get(
        f"{V1}/invoices/{invoice_id}/lines",
        params={"limit": 1, "starting_after": page["data"][0]["id"]},
    ).json()
    assert [line["description"] for line in rest["data"]] == ["Build"]
    paid = stripe.post(f"{V1}/invoices/{invoice_id}/pay", data={"paid_out_of_band": "true"})
    assert paid.json()["status"] == "paid"
