"""Reads of the exception queues for the people who work them: queue cards, root-cause groups,
one filtered page of items, each within an `ExceptionScope` (queues, legal entities).
Selectors only: nothing here writes, except the summary's first computation.

The cards and the groups add up the exception summary (`exception_summary`: totals per queue,
root cause, legal entity and currency, as of its last refresh), not the items: a few thousand
rows whatever the number of items. Money is summed there in integer cents, so SQLite's
floating-point SUM cannot drift a cent, and comes back as Decimal with its currency. The list
is live: one keyset page, a range of one index (ExceptionItem's `exception_open_by_*`
indexes; bench/portal_pages.py measures them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Min, QuerySet, Sum
from django.utils import timezone

from sync.pipeline.exception_summary import exception_summary_computed_at, trend_days
from sync.pipeline.models import ExceptionItem, ExceptionSummaryDay, ExceptionSummaryRow
from sync.pipeline.models.exception_items import Queue

PAGE_SIZE = 50
_CENTS = Decimal("0.01")


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


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else min(a, b)


def open_items(*, queues: Sequence[str] | None = None) -> QuerySet[ExceptionItem]:
    """Open and in-progress items, in `queues` when given (None: every queue)."""
    items = ExceptionItem.objects.filter(status__in=ExceptionItem.OPEN_STATUSES)
    return items if queues is None else items.filter(queue__in=queues)


@dataclass(frozen=True)
class ExceptionScope:
    """The exception items one person works: those of `queues`, and, when `legal_entities` is
    not None, only those of these entities or of no known entity (blank `legal_entity`).

    Every read of and action on items goes through `filter`, so a page, an action and a job
    see the same items."""

    queues: tuple[str, ...]
    legal_entities: tuple[str, ...] | None = None  # None: every entity

    def filter(self, rows: QuerySet) -> QuerySet:
        """`rows` (items, or summary rows: both have `queue` and `legal_entity`) in scope."""
        rows = rows.filter(queue__in=self.queues)
        if self.legal_entities is not None:
            rows = rows.filter(legal_entity__in=[*self.legal_entities, ""])
        return rows

    def items(self) -> QuerySet[ExceptionItem]:
        return self.filter(ExceptionItem.objects.all())

    @property
    def key(self) -> str:
        """The legal entities as one string ("" for every entity), for a job's constraint."""
        if self.legal_entities is None:
            return ""
        key = ",".join(sorted(self.legal_entities))
        # Fits the job's column however many entities a user has.
        return key if len(key) <= 200 else hashlib.sha256(key.encode()).hexdigest()


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


def _scope_of(scope: ExceptionScope | None, queues: Sequence[str] | None) -> ExceptionScope:
    if scope is not None:
        return scope
    if queues is None:
        raise TypeError("Give a scope, or the queues (every legal entity) to read.")
    return ExceptionScope(queues=tuple(queues))


def exception_queue_cards(
    *,
    scope: ExceptionScope | None = None,
    queues: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> list[QueueCard]:
    """One card per queue of `scope` (or of `queues`, every legal entity), in their order,
    empty queues included, as of the summary's last refresh (`exception_summary_computed_at`;
    computed now if it never was)."""
    scope = _scope_of(scope, queues)
    exception_summary_computed_at()
    now = now or timezone.now()
    rows = list(
        scope.filter(ExceptionSummaryRow.objects.all())
        .values("queue", "currency")
        .annotate(
            open=Sum("items"),
            past_sla=Sum("past_sla"),
            oldest=Min("oldest"),
            without_amount=Sum("without_amount"),
            cents=Sum("cents"),
        )
        .order_by()
    )
    counts: dict[str, dict] = {}
    for row in rows:
        card = counts.setdefault(
            row["queue"], {"open": 0, "past_sla": 0, "oldest": None, "without_amount": 0}
        )
        for name in ("open", "past_sla", "without_amount"):
            card[name] += row[name]
        card["oldest"] = _earliest(card["oldest"], row["oldest"])
    money = _money(rows, "queue")
    days = trend_days(now=now)
    trend: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for row in (
        scope.filter(ExceptionSummaryDay.objects.filter(day__gte=days[0]))
        .values("queue", "day")
        .annotate(n=Sum("raised"))
        .order_by()
    ):
        trend[row["queue"]][row["day"]] = row["n"]
    labels = dict(Queue.choices)
    cards = []
    for queue in scope.queues:
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


def exception_groups(
    *,
    scope: ExceptionScope | None = None,
    queues: Sequence[str] | None = None,
    limit: int = 200,
) -> list[RootCauseGroup]:
    """Open items of `scope` (or of `queues`, every legal entity) grouped by root cause, the
    most items first (ties by root cause), as of the summary's last refresh (computed now if
    it never was).

    The summary's rows added up per group, then the shown groups' first items (lowest id) in
    one query: a group's queue, code and cause are its root cause's (the signature is made of
    them); its message, suggested fix and record noun are those of its first item.
    """
    scope = _scope_of(scope, queues)
    exception_summary_computed_at()
    rows = list(
        scope.filter(ExceptionSummaryRow.objects.all())
        .values("root_cause", "currency")
        .annotate(
            items=Sum("items"),
            oldest=Min("oldest"),
            first=Min("first_item_id"),
            cents=Sum("cents"),
        )
        .order_by()
    )
    groups: dict[str, dict] = {}
    for row in rows:
        group = groups.setdefault(row["root_cause"], {"items": 0, "oldest": None, "first": None})
        group["items"] += row["items"]
        group["oldest"] = _earliest(group["oldest"], row["oldest"])
        group["first"] = (
            row["first"] if group["first"] is None else min(group["first"], row["first"])
        )
    shown = sorted(groups, key=lambda cause: (-groups[cause]["items"], cause))[:limit]
    wanted = set(shown)
    money = _money((row for row in rows if row["root_cause"] in wanted), "root_cause")
    firsts = ExceptionItem.objects.only(
        "queue", "code", "cause", "message", "suggested_fix", "record_key"
    ).in_bulk([groups[cause]["first"] for cause in shown])
    result = []
    for cause in shown:
        group = groups[cause]
        first = firsts.get(group["first"])
        if first is None:  # deleted since the GROUP BY read it
            continue
        result.append(
            RootCauseGroup(
                root_cause=cause,
                queue=first.queue,
                code=first.code,
                cause=first.cause or "",
                message=first.message,
                suggested_fix=first.suggested_fix,
                record_nouns=_record_nouns(first.record_key),
                items=group["items"],
                oldest=group["oldest"],
                money=money.get(cause, []),
            )
        )
    return result


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
    # Read as two ranges of one index: the items with an amount (largest first), then those
    # without (they come last). One ORDER BY … NULLS LAST would need that order in the index,
    # and a cursor "… OR money_at_risk IS NULL" would read the list from its top.
    items = items.select_related("assignee")
    amounts = items.filter(money_at_risk__isnull=False).order_by("-money_at_risk", "pk")
    no_amount = items.filter(money_at_risk__isnull=True).order_by("pk")
    if after is not None and after[0] is None:
        rows = list(no_amount.filter(pk__gt=after[1])[: size + 1])
    else:
        if after is not None:
            amount, pk = after
            amounts = amounts.filter(money_at_risk__lte=amount).exclude(
                money_at_risk=amount, pk__lte=pk
            )
        rows = list(amounts[: size + 1])
        if len(rows) <= size:
            rows += no_amount[: size + 1 - len(rows)]
    more = len(rows) > size
    rows = rows[:size]
    last = rows[-1] if rows else None
    next_cursor = None
    if more and last is not None:
        next_cursor = f"{'' if last.money_at_risk is None else last.money_at_risk}|{last.pk}"
    return ItemPage(items=rows, next_cursor=next_cursor)
