"""Reads of the exception queues for the people who work them: queue cards, root-cause groups,
one filtered page of items. Selectors only: nothing here writes.

Money is summed in integer cents (each amount rounded to the cent first), so SQLite's
floating-point SUM cannot drift a cent, and comes back as Decimal with its currency.
Every query is one GROUP BY over the open items, or one keyset page: none reads rows it does
not show.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import BigIntegerField, Count, F, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Cast, Round, TruncDate
from django.utils import timezone

from sync.pipeline.models import ExceptionItem
from sync.pipeline.models.exception_items import Queue

TREND_DAYS = 14
PAGE_SIZE = 50
_CENTS = Decimal("0.01")


def _cents_sum():
    return Sum(Cast(Round(F("money_at_risk") * 100), BigIntegerField()))


def _money(rows: Iterable[dict], key: str) -> dict[object, list[tuple[str, Decimal]]]:
    """{group: [(currency, amount), …]} from rows of (group, currency, cents), largest first."""
    by_group: dict[object, list[tuple[str, Decimal]]] = defaultdict(list)
    for row in rows:
        if row["cents"] is None:
            continue
        by_group[row[key]].append((row["currency"] or "", Decimal(row["cents"]) * _CENTS))
    for amounts in by_group.values():
        amounts.sort(key=lambda pair: (-pair[1], pair[0]))
    return by_group


def open_items(*, queues: Sequence[str] | None = None) -> QuerySet[ExceptionItem]:
    """Open and in-progress items, in `queues` when given (None: every queue)."""
    items = ExceptionItem.objects.filter(status__in=ExceptionItem.OPEN_STATUSES)
    return items if queues is None else items.filter(queue__in=queues)


@dataclass(frozen=True)
class QueueCard:
    queue: str
    label: str
    open: int
    past_sla: int
    oldest: dt.datetime | None
    without_amount: int
    money: list[tuple[str, Decimal]] = field(default_factory=list)
    trend: list[int] = field(default_factory=list)  # items first failing each of the last days

    @property
    def trend_bars(self) -> list[tuple[int, int]]:
        """(items, height in percent of the busiest day) per day, for a small bar chart."""
        peak = max(self.trend, default=0)
        return [(n, round(100 * n / peak) if peak else 0) for n in self.trend]


def exception_queue_cards(
    *, queues: Sequence[str], now: dt.datetime | None = None
) -> list[QueueCard]:
    """One card per queue in `queues`, in their order, empty queues included."""
    now = now or timezone.now()
    items = open_items(queues=queues)
    counts = {
        row["queue"]: row
        for row in items.values("queue").annotate(
            open=Count("id"),
            past_sla=Count("id", filter=Q(sla_due_at__lt=now)),
            oldest=Min("first_failed_at"),
            without_amount=Count("id", filter=Q(money_at_risk__isnull=True)),
        )
    }
    money = _money(
        items.filter(money_at_risk__isnull=False)
        .values("queue", "currency")
        .annotate(cents=_cents_sum()),
        "queue",
    )
    since = (now - dt.timedelta(days=TREND_DAYS - 1)).date()
    days = [since + dt.timedelta(days=n) for n in range(TREND_DAYS)]
    trend: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for row in (
        ExceptionItem.objects.filter(queue__in=queues, first_failed_at__date__gte=since)
        .annotate(day=TruncDate("first_failed_at"))
        .values("queue", "day")
        .annotate(n=Count("id"))
    ):
        trend[row["queue"]][row["day"]] = row["n"]
    labels = dict(Queue.choices)
    cards = []
    for queue in queues:
        row = counts.get(queue, {})
        cards.append(
            QueueCard(
                queue=queue,
                label=labels.get(queue, queue),
                open=row.get("open", 0),
                past_sla=row.get("past_sla", 0),
                oldest=row.get("oldest"),
                without_amount=row.get("without_amount", 0),
                money=money.get(queue, []),
                trend=[trend[queue].get(day, 0) for day in days],
            )
        )
    return cards


@dataclass(frozen=True)
class RootCauseGroup:
    root_cause: str
    queue: str
    code: str
    cause: str
    message: str
    suggested_fix: str
    record_nouns: tuple[str, str]
    items: int
    oldest: dt.datetime | None
    money: list[tuple[str, Decimal]] = field(default_factory=list)

    @property
    def record_kind(self) -> str:
        """What the items are, in the number the count needs: "1 time entry", "3 time entries"."""
        return self.record_nouns[0] if self.items == 1 else self.record_nouns[1]


def _record_nouns(record_key: str) -> tuple[str, str]:
    """`psa:time_entry:123` → ("time entry", "time entries"): what the group's items are."""
    parts = record_key.split(":")
    entity = parts[1] if len(parts) > 2 else "record"
    noun = entity.replace("_", " ").lower()
    if noun.endswith("ies"):
        noun = f"{noun[:-3]}y"
    elif noun.endswith(("xes", "sses")):
        noun = noun[:-2]
    elif noun.endswith("s") and not noun.endswith("ss"):
        noun = noun[:-1]
    if noun.endswith("y"):
        return noun, f"{noun[:-1]}ies"
    return noun, f"{noun}es" if noun.endswith(("x", "ss")) else f"{noun}s"


def exception_groups(*, queues: Sequence[str], limit: int = 200) -> list[RootCauseGroup]:
    """Open items grouped by root cause, the most items first (one GROUP BY and one money
    GROUP BY over the same groups)."""
    items = open_items(queues=queues)
    rows = list(
        items.values("root_cause")
        .annotate(
            items=Count("id"),
            oldest=Min("first_failed_at"),
            queue=Max("queue"),
            code=Max("code"),
            cause=Max("cause"),
            message=Max("message"),
            suggested_fix=Max("suggested_fix"),
            record_key=Max("record_key"),
        )
        .order_by("-items", "root_cause")[:limit]
    )
    money = _money(
        items.filter(root_cause__in=[r["root_cause"] for r in rows], money_at_risk__isnull=False)
        .values("root_cause", "currency")
        .annotate(cents=_cents_sum()),
        "root_cause",
    )
    return [
        RootCauseGroup(
            root_cause=row["root_cause"],
            queue=row["queue"],
            code=row["code"],
            cause=row["cause"] or "",
            message=row["message"],
            suggested_fix=row["suggested_fix"],
            record_nouns=_record_nouns(row["record_key"]),
            items=row["items"],
            oldest=row["oldest"],
            money=money.get(row["root_cause"], []),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class ItemPage:
    items: list[ExceptionItem]
    next_cursor: str | None  # where the next page starts; None on the last page


def _cursor_parse(cursor: str | None) -> tuple[Decimal | None, int] | None:
    if not cursor or "|" not in cursor:
        return None
    amount, _, pk = cursor.partition("|")
    try:
        return (Decimal(amount) if amount else None), int(pk)
    except (ArithmeticError, ValueError):
        return None


def exception_items_page(
    *, items: QuerySet[ExceptionItem], cursor: str | None = None, size: int = PAGE_SIZE
) -> ItemPage:
    """One page of `items`: the most money at risk first (items without an amount last), then
    the oldest. Keyset paging on (amount, id), so the thousandth page costs what the first
    does; `cursor` is the previous page's `next_cursor` (an unreadable one starts over)."""
    after = _cursor_parse(cursor)
    if after is not None:
        amount, pk = after
        if amount is None:
            items = items.filter(money_at_risk__isnull=True, pk__gt=pk)
        else:
            items = items.filter(
                Q(money_at_risk__lt=amount)
                | Q(money_at_risk=amount, pk__gt=pk)
                | Q(money_at_risk__isnull=True)
            )
    rows = list(
        items.select_related("assignee").order_by(F("money_at_risk").desc(nulls_last=True), "pk")[
            : size + 1
        ]
    )
    more = len(rows) > size
    rows = rows[:size]
    last = rows[-1] if rows else None
    next_cursor = None
    if more and last is not None:
        next_cursor = f"{'' if last.money_at_risk is None else last.money_at_risk}|{last.pk}"
    return ItemPage(items=rows, next_cursor=next_cursor)
