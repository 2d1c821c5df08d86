"""The exception summary: open items totalled per (queue, root cause, legal entity, currency),
and items raised per (queue, legal entity, day), recomputed from the items as a whole.

The queue cards and the root-cause groups (`exception_queries`) add up these few thousand rows
instead of reading every open item: at 1,000,000 items an exact pass over the items costs
400-500 ms, a read of the summary a few ms (bench/README.md). The counts are therefore as of
the last refresh, and the pages say so. Refreshed by beat every 15 s
(`sync.tasks.EXCEPTION_SUMMARY_SECONDS`), and soon after
anything changes many items (`exception_summary_refresh_soon`: a portal action, a group job,
a cycle); computed at once by the first read when it never was (a fresh database, a test).

A refresh is two INSERT … SELECT (GROUP BY) statements in one transaction that first deletes
the old rows: readers see the old summary or the new one, never half of each. It reads the
items without locking them (raisers never wait for it); refreshes are serialised by the row
lock of `ExceptionSummaryRefresh`, so two never interleave their deletes and inserts.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import BigIntegerField, Count, F, Min, Q, QuerySet, Sum
from django.db.models.functions import Cast, Round, TruncDate
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable
from redis.exceptions import RedisError

from sync.pipeline.models import (
    ExceptionItem,
    ExceptionSummaryDay,
    ExceptionSummaryRefresh,
    ExceptionSummaryRow,
)

logger = logging.getLogger(__name__)

TREND_DAYS = 14
# Requests for a refresh within this long of one already queued ride on it (one task, not
# one per action); the task forgets the request as it starts, so a change made while it runs
# asks for another.
PENDING_KEY = "exception-summary-refresh-pending"
PENDING_SECONDS = 60
STATE_PK = 1


def cents_sum() -> Sum:
    """The sum of `money_at_risk` in integer cents (each amount rounded to the cent first), so
    that SQLite's floating-point SUM cannot drift a cent."""
    return Sum(Cast(Round(F("money_at_risk") * 100), BigIntegerField()))


@dataclass(frozen=True)
class SummaryRefreshed:
    computed_at: dt.datetime
    rows: int
    days: int
    took_ms: int


def _insert_select(model: type, columns: tuple[str, ...], query: QuerySet) -> int:
    """INSERT INTO `model` (`columns`) the rows of `query`, in one statement; its SELECT lists
    the grouped fields then the annotations, in `columns`' order."""
    sql, params = query.query.sql_with_params()
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    with connection.cursor() as cursor:
        # The table and column names are ours; every value is a parameter.
        cursor.execute(f"INSERT INTO {model._meta.db_table} ({names}) {sql}", params)
        return cursor.rowcount


def _state_locked() -> ExceptionSummaryRefresh:
    try:
        with transaction.atomic():
            ExceptionSummaryRefresh.objects.get_or_create(pk=STATE_PK)
    except IntegrityError:  # another refresh created it a moment ago
        pass
    return ExceptionSummaryRefresh.objects.select_for_update().get(pk=STATE_PK)


def exception_summary_refresh() -> SummaryRefreshed:
    """Recompute the whole summary from the items, replacing it atomically. Idempotent; waits
    for a refresh already running, then runs its own (so it sees every change made before it
    was asked for). Takes no lock on the items."""
    started = time.monotonic()
    with transaction.atomic():
        state = _state_locked()
        # After the lock: this refresh's reads start later than any refresh before it.
        now = timezone.now()
        ExceptionSummaryRow.objects.all().delete()
        ExceptionSummaryDay.objects.all().delete()
        open_items = ExceptionItem.objects.filter(status__in=ExceptionItem.OPEN_STATUSES)
        rows = _insert_select(
            ExceptionSummaryRow,
            (
                "queue",
                "root_cause",
                "legal_entity",
                "currency",
                "items",
                "without_amount",
                "cents",
                "oldest",
                "past_sla",
                "first_item_id",
            ),
            open_items.values("queue", "root_cause", "legal_entity", "currency")
            .annotate(
                n_items=Count("id"),
                n_without_amount=Count("id", filter=Q(money_at_risk__isnull=True)),
                n_cents=cents_sum(),
                n_oldest=Min("first_failed_at"),
                n_past_sla=Count("id", filter=Q(sla_due_at__lt=now)),
                n_first=Min("id"),
            )
            .order_by(),
        )
        days = _insert_select(
            ExceptionSummaryDay,
            ("queue", "legal_entity", "day", "raised"),
            # `first_failed_at__date__gte` as a range on the column (midnight of the first day
            # in the current time zone, where TruncDate counts days), so that it reads an index.
            ExceptionItem.objects.filter(first_failed_at__gte=trend_start(now=now))
            .annotate(n_day=TruncDate("first_failed_at"))
            .values("queue", "legal_entity", "n_day")
            .annotate(n_raised=Count("*"))
            .order_by(),
        )
        took_ms = round((time.monotonic() - started) * 1000)
        state.computed_at, state.took_ms = now, took_ms
        state.save(update_fields=["computed_at", "took_ms"])
    return SummaryRefreshed(computed_at=now, rows=rows, days=days, took_ms=took_ms)


def trend_days(*, now: dt.datetime) -> list[dt.date]:
    """The TREND_DAYS days of the trend, ending today (in the current time zone)."""
    today = timezone.localdate(now)
    return [today - dt.timedelta(days=TREND_DAYS - 1 - n) for n in range(TREND_DAYS)]


def trend_start(*, now: dt.datetime) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(trend_days(now=now)[0], dt.time.min))


def exception_summary_computed_at() -> dt.datetime:
    """When the summary the pages read was computed; computes it now if it never was."""
    computed = (
        ExceptionSummaryRefresh.objects.filter(pk=STATE_PK)
        .values_list("computed_at", flat=True)
        .first()
    )
    if computed is None:
        computed = exception_summary_refresh().computed_at
    return computed


def exception_summary_refresh_soon() -> None:
    """Ask a worker to refresh the summary once the current transaction commits (at once
    outside one). Asks within PENDING_SECONDS of a queued one ride on it. A broker or cache
    that is down costs nothing but freshness: beat refreshes every few seconds anyway."""
    transaction.on_commit(_enqueue)


def _enqueue() -> None:
    from sync.tasks import exception_summary_refresh_task

    try:
        if not cache.add(PENDING_KEY, 1, timeout=PENDING_SECONDS):
            return
        exception_summary_refresh_task.apply_async(expires=PENDING_SECONDS)
    except (BrokerUnavailable, RedisError, OSError) as exc:
        logger.warning("exception summary refresh not enqueued (%s): beat will do it", exc)


def exception_summary_pending_forget() -> None:
    """Called by the refresh task as it starts: later asks enqueue a new refresh."""
    try:
        cache.delete(PENDING_KEY)
    except (RedisError, OSError) as exc:
        logger.warning("exception summary: pending flag not cleared (%s)", exc)
