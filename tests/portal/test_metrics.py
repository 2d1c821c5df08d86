"""/metrics answers a scraper with the token or an ops user, and nobody else; active work is
counted afresh at every scrape, whole-table totals at most once per METRICS_TOTALS_SECONDS."""

from __future__ import annotations

import contextlib
import itertools
from datetime import datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from sync.pipeline.exception_items import Failure, exception_items_raise
from sync.pipeline.inbox import inbox_store
from sync.pipeline.metrics import metrics_render
from sync.pipeline.models import Connection, Delivery, ExceptionItem, InboxItem, SyncRun
from sync.pipeline.outbox.claims import deliveries_claim
from sync.pipeline.outbox.outcomes import Outcome, delivery_outcome_record

pytestmark = pytest.mark.django_db


def test_an_anonymous_request_gets_no_metrics(client, settings):
    settings.METRICS_TOKEN = "scrape-me-please"
    response = client.get(reverse("metrics"))
    assert response.status_code == 403
    wrong = client.get(reverse("metrics"), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 403


def test_a_scraper_with_the_token_reads_open_exceptions_by_queue(client, settings):
    settings.METRICS_TOKEN = "scrape-me-please"
    exception_items_raise(
        failures=[
            Failure(
                record_key=f"psa:time_entry:{n}",
                stage="validate",
                queue="time_and_expense",
                code="PERIOD_CLOSED",
                message="closed",
            )
            for n in range(3)
        ],
        now=timezone.now(),
    )
    response = client.get(reverse("metrics"), headers={"Authorization": "Bearer scrape-me-please"})
    assert response.status_code == 200
    assert 'ledgerbridge_open_exceptions{queue="time_and_expense"} 3.0' in response.content.decode()


def test_without_a_token_configured_only_ops_users_read_metrics(client, settings, role_user):
    settings.METRICS_TOKEN = ""
    assert client.get(reverse("metrics"), headers={"Authorization": "Bearer "}).status_code == 403
    client.force_login(role_user("finance"))
    assert client.get(reverse("metrics")).status_code == 403
    client.force_login(role_user("integration_ops", username="ops"))
    assert client.get(reverse("metrics")).status_code == 200


# --- what a scrape costs and how fresh each figure is (docs/decisions.md #24) ---

PENDING = 'ledgerbridge_deliveries{operation="erp.time_bill.upsert",state="pending"}'
IN_FLIGHT = 'ledgerbridge_deliveries{operation="erp.time_bill.upsert",state="in_flight"}'
FAILED = 'ledgerbridge_deliveries{operation="erp.time_bill.upsert",state="failed"}'
DELIVERED = 'ledgerbridge_deliveries{operation="erp.time_bill.upsert",state="delivered"}'
RETRIES = "ledgerbridge_delivery_retries"
AGE = "ledgerbridge_metrics_totals_age_seconds"


@pytest.fixture(autouse=True)
def _no_cached_totals():
    """Each test computes its own totals: the cache (Redis) outlives a test's database."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_delivery(db):
    erp = Connection.objects.create(
        name="erp", system="erp", dialect="netsuite", base_url="http://127.0.0.1:9/netsuite"
    )
    keys = itertools.count(1)

    def make(**values) -> Delivery:
        n = next(keys)
        return Delivery.objects.create(
            **{
                "connection": erp,
                "operation": "erp.time_bill.upsert",
                "content_type": ContentType.objects.get_for_model(Connection),
                "object_id": str(n),
                "record_version": 1,
                "idempotency_key": f"erp:time_bill:{n}:v1",
                "external_id": f"LB-TE-{n}",
                "payload": {"body": {"hours": "7.50"}},
                "next_attempt_at": timezone.now(),
                "correlation_id": f"corr-{n}",
                **values,
            }
        )

    return make


def figures(*, now: datetime | None = None) -> dict[str, float]:
    """One scrape as {'name{label="value",…}': value}, labels in name order."""
    found = {}
    for family in text_string_to_metric_families(metrics_render(now=now).decode()):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


def test_pending_in_flight_and_failed_deliveries_change_on_the_very_next_scrape(
    settings, make_delivery
):
    settings.METRICS_TOTALS_SECONDS = 3600
    make_delivery()
    make_delivery()
    assert figures()[PENDING] == 2
    (claimed,) = deliveries_claim(limit=1)
    after_claim = figures()
    assert (after_claim[PENDING], after_claim[IN_FLIGHT]) == (1, 1)
    delivery_outcome_record(
        delivery=claimed,
        outcome=Outcome(
            ok=False,
            kind="permanent",
            status=400,
            vendor_code="PERIOD_CLOSED",
            message="closed",
        ),
    )
    after_failure = figures()
    assert (after_failure[PENDING], after_failure[FAILED]) == (1, 1)
    assert IN_FLIGHT not in after_failure
    assert sum(v for k, v in after_failure.items() if k.startswith("ledgerbridge_open_exc")) == 1


def test_pending_and_parked_inbox_items_are_exact_and_processed_ones_follow_the_totals(settings):
    settings.METRICS_TOTALS_SECONDS = 300
    stored = inbox_store(
        system="psa", entity="time_entries", records=[(str(n), {"hours": str(n)}) for n in range(3)]
    ).new
    start = timezone.now()
    first = figures(now=start)
    assert first['ledgerbridge_inbox_items{status="pending"}'] == 3
    InboxItem.objects.filter(pk=stored[0].pk).update(status="processed", processed_at=start)
    InboxItem.objects.filter(pk=stored[1].pk).update(status="parked", processed_at=start)
    soon = figures(now=start + timedelta(seconds=60))
    assert soon['ledgerbridge_inbox_items{status="pending"}'] == 1
    assert soon['ledgerbridge_inbox_items{status="parked"}'] == 1
    assert 'ledgerbridge_inbox_items{status="processed"}' not in soon  # as of `start`
    later = figures(now=start + timedelta(seconds=300))
    assert later['ledgerbridge_inbox_items{status="processed"}'] == 1


def test_delivered_totals_and_retries_come_from_the_cache_until_the_interval_has_passed(
    settings, make_delivery
):
    settings.METRICS_TOTALS_SECONDS = 300
    make_delivery(state="delivered", attempts=1)
    start = timezone.now()
    first = figures(now=start)
    assert (first[DELIVERED], first[RETRIES], first[AGE]) == (1, 0, 0)
    make_delivery(state="delivered", attempts=3)
    cached = figures(now=start + timedelta(seconds=299))
    assert (cached[DELIVERED], cached[RETRIES], cached[AGE]) == (1, 0, 299)
    fresh = figures(now=start + timedelta(seconds=300))
    assert (fresh[DELIVERED], fresh[RETRIES], fresh[AGE]) == (2, 2, 0)


def test_with_the_interval_at_zero_every_scrape_computes_the_totals(settings):
    settings.METRICS_TOTALS_SECONDS = 0
    succeeded = 'ledgerbridge_sync_runs{kind="cycle",status="succeeded"}'
    SyncRun.objects.create(kind="cycle", status="succeeded", started_at=timezone.now())
    assert figures()[succeeded] == 1
    SyncRun.objects.create(kind="cycle", status="succeeded", started_at=timezone.now())
    assert figures()[succeeded] == 2


@pytest.mark.integration
def test_a_scrape_with_cached_totals_reads_only_partial_indexes_of_active_work(settings):
    """Finished work is most of each table, as in production; with fresh statistics the
    planner must reach the active rows through their partial indexes, never a table scan."""
    if connection.vendor != "postgresql":
        pytest.fail("Needs PostgreSQL's planner: run through `make test`.")
    erp = Connection.objects.create(
        name="erp", system="erp", dialect="netsuite", base_url="http://127.0.0.1:9/netsuite"
    )
    now = timezone.now()
    content_type = ContentType.objects.get_for_model(Connection)
    states = ["delivered"] * 5000 + ["pending", "in_flight", "failed"] * 5
    Delivery.objects.bulk_create(
        [
            Delivery(
                connection=erp,
                operation="erp.time_bill.upsert",
                content_type=content_type,
                object_id=str(n),
                record_version=1,
                idempotency_key=f"k{n}",
                external_id=f"LB-TE-{n}",
                payload={"hours": "7.50"},
                state=state,
                next_attempt_at=now,
                correlation_id=f"c{n}",
            )
            for n, state in enumerate(states)
        ],
        batch_size=1000,
    )
    statuses = ["processed"] * 5000 + ["pending", "parked"] * 5
    InboxItem.objects.bulk_create(
        [
            InboxItem(
                system="psa",
                entity="time_entries",
                external_id=str(n),
                payload={"note": "x" * 600},
                payload_hash=str(n),
                received_at=now,
                correlation_id=f"c{n}",
                status=status,
            )
            for n, status in enumerate(statuses)
        ],
        batch_size=1000,
    )
    ExceptionItem.objects.bulk_create(
        [
            ExceptionItem(
                queue="time_and_expense",
                stage="validate",
                code="PERIOD_CLOSED",
                category="business",
                message="closed",
                record_key=f"psa:te:{n}",
                root_cause="period",
                status=status,
                first_failed_at=now,
                last_failed_at=now,
                sla_due_at=now,
            )
            for n, status in enumerate(["resolved"] * 5000 + ["open"] * 5)
        ],
        batch_size=1000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE pipeline_delivery, pipeline_inboxitem, pipeline_exceptionitem")
    settings.METRICS_TOTALS_SECONDS = 3600
    metrics_render()  # computes and caches the totals
    with CaptureQueriesContext(connection) as scrape:
        metrics_render()
    plans = []
    with connection.cursor() as cursor:
        for query in scrape.captured_queries:
            cursor.execute("EXPLAIN " + query["sql"])
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    assert len(plans) == 6, plans
    assert not [plan for plan in plans if "Seq Scan" in plan], plans
    for index in (
        "delivery_pending",
        "delivery_in_flight",
        "delivery_failed",
        "inbox_pending",
        "inbox_parked",
    ):
        assert any(index in plan for plan in plans), (index, plans)
    # Open exception items: any of the partial indexes over open items will do.
    open_item_indexes = (
        "exception_one_open_per_record_stage",
        "exception_open_by_money",
        "exception_open_by_queue",
        "exception_open_by_cause",
        "exception_open_by_entity",
    )
    assert any(index in plan for plan in plans for index in open_item_indexes), plans


def test_vendor_requests_and_their_latency_are_counted_per_connection_and_outcome():
    import uuid

    import httpx

    from sync.connectors.base import ConnectionConfig, TransportError
    from sync.connectors.http import VendorHttp

    name = f"erp-{uuid.uuid4().hex[:8]}"  # Redis outlives tests: a name of this test's own
    answers = iter(
        [httpx.Response(200, json={}), httpx.Response(503, json={}), httpx.Response(429, json={})]
    )

    def vendor(request: httpx.Request) -> httpx.Response:
        answer = next(answers, None)
        if answer is None:
            raise httpx.ReadTimeout("no answer", request=request)
        return answer

    http = VendorHttp(
        ConnectionConfig(system="netsuite", base_url="http://erp.test", name=name),
        transport=httpx.MockTransport(vendor),
    )
    for _ in range(4):
        with contextlib.suppress(TransportError):  # 503, 429 and the timeout raise
            http.request("POST", "/record", json={})

    found = figures()
    for outcome in ("2xx", "5xx", "429", "timeout"):
        key = f'ledgerbridge_connector_requests_total{{connection="{name}",outcome="{outcome}"}}'
        assert found[key] == 1
    seconds = "ledgerbridge_connector_request_seconds"
    assert found[f'{seconds}_count{{connection="{name}"}}'] == 4
    assert found[f'{seconds}_bucket{{connection="{name}",le="+Inf"}}'] == 4


def test_without_redis_the_scrape_still_answers_and_requests_still_go_out(settings):
    import httpx
    import redis

    from sync.connectors.base import ConnectionConfig
    from sync.connectors.http import VendorHttp
    from sync.connectors.stats import RequestStats

    unreachable = RequestStats(
        redis_factory=lambda: redis.Redis.from_url(
            "redis://127.0.0.1:1/0", socket_connect_timeout=0.2
        )
    )
    unreachable.record(connection="erp", outcome="2xx", seconds=0.01)
    unreachable.flush()  # dropped, not raised

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    http = VendorHttp(
        ConnectionConfig(system="netsuite", base_url="http://erp.test"),
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json={})),
    )
    assert http.request("GET", "/record").status == 200
    found = figures()
    assert not any(key.startswith("ledgerbridge_connector_") for key in found)
    assert "ledgerbridge_metrics_totals_age_seconds" in found


def test_the_celery_queue_length_is_read_from_the_broker(settings):
    import uuid

    from sync.connectors.stats import redis_client

    settings.CELERY_TASK_DEFAULT_QUEUE = queue = f"metrics-test-{uuid.uuid4().hex[:8]}"
    redis = redis_client()
    redis.rpush(queue, "a", "b")
    redis.rpush(f"{queue}\x06\x163", "c")  # a message of priority step 3
    try:
        assert figures()[f'ledgerbridge_task_queue_length{{queue="{queue}"}}'] == 3
    finally:
        redis.delete(queue, f"{queue}\x06\x163")


def test_totals_refreshed_by_beat_are_what_every_scrape_reads(settings, make_delivery):
    from django.db import connection as db

    from sync.tasks import beat_schedule_delivery, metrics_totals_refresh

    settings.METRICS_TOTALS_SECONDS = 300
    entry = beat_schedule_delivery()["sync-metrics-totals"]
    assert (entry["task"], entry["schedule"]) == ("sync.metrics_totals_refresh", 150)
    make_delivery(state="delivered", attempts=3)
    metrics_totals_refresh()  # what beat runs

    with CaptureQueriesContext(db) as scrape:
        found = figures()

    assert found[DELIVERED] == 1
    assert found[RETRIES] == 2
    read = " ".join(q["sql"] for q in scrape.captured_queries)
    assert "attempts" not in read  # no whole-table aggregate in the scrape itself
