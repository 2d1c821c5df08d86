"""Prometheus metrics read from the database at scrape time.

Gauges come from the tables every worker writes, so the figures agree across any number of
worker processes without Prometheus' multiprocess mode. The work an operator acts on (pending,
in-flight and failed deliveries, pending and parked inbox items, open exception items) is
counted exactly at every scrape, each through a partial index that holds only that work. The
totals that need a whole-table aggregate (delivered deliveries, retries, processed inbox items,
sync runs) are computed by a beat task every half `METRICS_TOTALS_SECONDS` into the cache
(Redis: one copy for every web process), by a scrape only when they are older than that, and
their age is a gauge of its own (docs/decisions.md #24).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from sync.connectors.stats import redis_client, request_stats, requests_read
from sync.pipeline.models import Delivery, ExceptionItem, InboxItem, SyncRun

# Each has a partial index of its own (`delivery_<state>`, `inbox_<status>`): counting them
# reads the active work only, however many rows the tables hold.
ACTIVE_DELIVERY_STATES = (Delivery.State.PENDING, Delivery.State.IN_FLIGHT, Delivery.State.FAILED)
ACTIVE_INBOX_STATUSES = (InboxItem.Status.PENDING, InboxItem.Status.PARKED)
logger = logging.getLogger(__name__)
TOTALS_CACHE_KEY = "ledgerbridge:metrics:totals"


def metrics_totals_compute(*, now: datetime) -> dict[str, Any]:
    """The whole-table aggregates: one scan of each of the delivery, inbox and sync run
    tables. Plain lists and ints, so any cache backend can store them."""
    # Attempts beyond the first: a delivery not sent yet (0 attempts) counts none, not -1.
    deliveries = list(
        Delivery.objects.values_list("state", "operation")
        .annotate(n=Count("id"), retries=Sum(Greatest(F("attempts") - 1, Value(0))))
        .order_by()
    )
    return {
        "computed_at": now,
        "deliveries": [
            (state, operation, n)
            for state, operation, n, _ in deliveries
            if state not in ACTIVE_DELIVERY_STATES
        ],
        "retries": sum(row[3] or 0 for row in deliveries),
        "inbox": list(
            InboxItem.objects.exclude(status__in=ACTIVE_INBOX_STATUSES)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        ),
        "runs": list(
            SyncRun.objects.values_list("kind", "status").annotate(n=Count("id")).order_by()
        ),
    }


def metrics_totals_refresh(*, now: datetime | None = None) -> dict[str, Any]:
    """Compute the totals and keep them in the cache (the beat task
    `sync.metrics_totals_refresh`, every half `METRICS_TOTALS_SECONDS`)."""
    totals = metrics_totals_compute(now=now or timezone.now())
    # No expiry: the age check of metrics_totals_get decides, so a changed setting applies.
    cache.set(TOTALS_CACHE_KEY, totals, timeout=None)
    return totals


def metrics_totals_get(*, now: datetime) -> dict[str, Any]:
    """The cached totals; computed here only when they are `METRICS_TOTALS_SECONDS` old (beat
    is not refreshing them) or the cache cannot be read (then not kept)."""
    try:
        totals = cache.get(TOTALS_CACHE_KEY)
    except Exception as exc:  # the cache's Redis is away: the scrape still answers
        logger.warning("metrics totals not cached: %s", exc)
        return metrics_totals_compute(now=now)
    if totals is None or (
        (now - totals["computed_at"]).total_seconds() >= settings.METRICS_TOTALS_SECONDS
    ):
        totals = metrics_totals_refresh(now=now)
    return totals


class PipelineCollector:
    def __init__(self, *, now: datetime) -> None:
        self.now = now

    def collect(self):
        totals = metrics_totals_get(now=self.now)

        deliveries = GaugeMetricFamily(
            "ledgerbridge_deliveries",
            "Outbox deliveries by state and operation (delivered: as of the totals' age).",
            labels=["state", "operation"],
        )
        for state in ACTIVE_DELIVERY_STATES:
            for operation, n in (
                Delivery.objects.filter(state=state)
                .values_list("operation")
                .annotate(n=Count("id"))
                .order_by()
            ):
                deliveries.add_metric([state, operation], n)
        for state, operation, n in totals["deliveries"]:
            deliveries.add_metric([state, operation], n)
        yield deliveries

        retries = GaugeMetricFamily(
            "ledgerbridge_delivery_retries",
            "Attempts beyond the first, over all deliveries (as of the totals' age).",
        )
        retries.add_metric([], totals["retries"])
        yield retries

        open_items = GaugeMetricFamily(
            "ledgerbridge_open_exceptions",
            "Open exception items by queue.",
            labels=["queue"],
        )
        # Read through `exception_one_open_per_record_stage`, whose condition is this filter.
        for queue, n in (
            ExceptionItem.objects.filter(status__in=ExceptionItem.OPEN_STATUSES)
            .values_list("queue")
            .annotate(n=Count("id"))
            .order_by()
        ):
            open_items.add_metric([queue], n)
        yield open_items

        inbox = GaugeMetricFamily(
            "ledgerbridge_inbox_items",
            "Inbox items by status (processed: as of the totals' age).",
            labels=["status"],
        )
        for status in ACTIVE_INBOX_STATUSES:
            n = InboxItem.objects.filter(status=status).count()
            if n:
                inbox.add_metric([status], n)
        for status, n in totals["inbox"]:
            inbox.add_metric([status], n)
        yield inbox

        runs = GaugeMetricFamily(
            "ledgerbridge_sync_runs",
            "Sync runs by kind and status (as of the totals' age).",
            labels=["kind", "status"],
        )
        for kind, status, n in totals["runs"]:
            runs.add_metric([kind, status], n)
        yield runs

        age = GaugeMetricFamily(
            "ledgerbridge_metrics_totals_age_seconds",
            "Seconds since the whole-table totals (delivered deliveries, retries, processed "
            "inbox items, sync runs) were computed; beat recomputes them every half "
            "METRICS_TOTALS_SECONDS.",
        )
        age.add_metric([], (self.now - totals["computed_at"]).total_seconds())
        yield age


class RedisCollector:
    """What Redis holds: vendor API requests and their latency per connection, as every
    process summed them (sync.connectors.stats), and the Celery queue's length. Without Redis
    these families are left out."""

    def collect(self):
        request_stats.flush()  # this process's own requests too
        redis = redis_client()
        try:
            yield from self._families(redis)
        except Exception as exc:  # any failure: the rest of the scrape still answers
            logger.warning("metrics kept in Redis unavailable: %s", exc)
        finally:
            redis.close()

    def _families(self, redis: Any):
        counts, histograms = requests_read(redis)
        requests = CounterMetricFamily(
            "ledgerbridge_connector_requests",
            "Vendor API requests by connection and outcome.",
            labels=["connection", "outcome"],
        )
        for (connection, outcome), n in sorted(counts.items()):
            requests.add_metric([connection, outcome], n)
        seconds = HistogramMetricFamily(
            "ledgerbridge_connector_request_seconds",
            "Vendor API request latency by connection (the vendor's answer, read whole).",
            labels=["connection"],
        )
        for connection, (buckets, total) in sorted(histograms.items()):
            seconds.add_metric([connection], buckets, sum_value=total)
        queue = self._task_queue(redis)
        # Yielded once all three are read: a Redis failure midway leaves all of them out.
        yield from (requests, seconds, queue)

    @staticmethod
    def _task_queue(redis: Any) -> GaugeMetricFamily:
        """Celery messages waiting in the broker: the default queue's Redis lists (kombu keeps
        one per priority step: `celery`, `celery\x06\x163`, …)."""
        queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
        waiting = sum(
            redis.llen(name) for name in [queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9))]
        )
        family = GaugeMetricFamily(
            "ledgerbridge_task_queue_length",
            "Celery tasks waiting in the broker.",
            labels=["queue"],
        )
        family.add_metric([queue], waiting)
        return family


def metrics_render(*, now: datetime | None = None) -> bytes:
    """The exposition text. Read-only; at most one scrape per `METRICS_TOTALS_SECONDS` (per
    process) pays for the whole-table totals, the others read active work only."""
    registry = CollectorRegistry()
    registry.register(PipelineCollector(now=now or timezone.now()))
    registry.register(RedisCollector())
    return generate_latest(registry)
