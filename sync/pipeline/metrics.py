"""Prometheus metrics read from the database at scrape time.

Gauges come from the tables every worker writes, so the figures agree across any number of
worker processes without Prometheus' multiprocess mode.
"""

from __future__ import annotations

from django.db.models import Count, Sum
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from sync.pipeline.models import Delivery, ExceptionItem, InboxItem, SyncRun


class PipelineCollector:
    def collect(self):
        deliveries = GaugeMetricFamily(
            "ledgerbridge_deliveries", "Outbox deliveries by state and operation.",
            labels=["state", "operation"],
        )
        for row in Delivery.objects.values("state", "operation").annotate(n=Count("id")):
            deliveries.add_metric([row["state"], row["operation"]], row["n"])
        yield deliveries

        retries = GaugeMetricFamily(
            "ledgerbridge_delivery_retries", "Attempts beyond the first, over all deliveries.",
        )
        total = Delivery.objects.aggregate(a=Sum("attempts"), n=Count("id"))
        retries.add_metric([], max(0, (total["a"] or 0) - (total["n"] or 0)))
        yield retries

        open_items = GaugeMetricFamily(
            "ledgerbridge_open_exceptions", "Open exception items by queue.", labels=["queue"],
        )
        for row in ExceptionItem.objects.filter(
            status__in=ExceptionItem.OPEN_STATUSES
        ).values("queue").annotate(n=Count("id")):
            open_items.add_metric([row["queue"]], row["n"])
        yield open_items

        inbox = GaugeMetricFamily(
            "ledgerbridge_inbox_items", "Inbox items by status.", labels=["status"]
        )
        for row in InboxItem.objects.values("status").annotate(n=Count("id")):
            inbox.add_metric([row["status"]], row["n"])
        yield inbox

        runs = GaugeMetricFamily(
            "ledgerbridge_sync_runs", "Sync runs by kind and status.", labels=["kind", "status"]
        )
        for row in SyncRun.objects.values("kind", "status").annotate(n=Count("id")):
            runs.add_metric([row["kind"], row["status"]], row["n"])
        yield runs


def metrics_render() -> bytes:
    registry = CollectorRegistry()
    registry.register(PipelineCollector())
    return generate_latest(registry)
