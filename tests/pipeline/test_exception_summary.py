"""The exception summary the queue cards and groups read: exact totals of the open items as of
its last refresh, replaced whole, computed by the first read of a fresh database, refreshed by
beat and after a portal action."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from sync.pipeline.exception_items import Failure, exception_items_raise
from sync.pipeline.exception_queries import ExceptionScope, exception_groups, exception_queue_cards
from sync.pipeline.exception_summary import (
    exception_summary_computed_at,
    exception_summary_refresh,
)
from sync.pipeline.models import ExceptionItem, ExceptionSummaryRow

pytestmark = pytest.mark.django_db

ALL = ExceptionScope(queues=("time_and_expense", "project_setup"))


def raise_(n: int, *, start: int, **values) -> list[ExceptionItem]:
    return exception_items_raise(
        failures=[
            Failure(
                record_key=f"psa:time_entry:{start + i}",
                stage="validate",
                queue=values.get("queue", "time_and_expense"),
                code=values.get("code", "PERIOD_CLOSED"),
                message="The ERP accounting period is closed.",
                cause=values.get("cause", "2026-09"),
                money_at_risk=values.get("money", Decimal("0.10")),
                currency=values.get("currency", "EUR"),
                legal_entity=values.get("legal_entity", ""),
            )
            for i in range(n)
        ]
    )


def _card(queue: str = "time_and_expense"):
    return next(c for c in exception_queue_cards(scope=ALL) if c.queue == queue)


def test_the_first_read_of_a_fresh_database_computes_the_summary():
    raise_(3, start=1)
    card = _card()
    assert (card.open, card.money, card.trend[-1]) == (3, [("EUR", Decimal("0.30"))], 3)
    assert exception_summary_computed_at() <= timezone.now()


def test_cards_and_groups_count_as_of_the_last_refresh_and_a_refresh_catches_up():
    raise_(2, start=1)
    assert _card().open == 2
    raise_(1, start=10, money=None, currency="")
    raise_(1, start=20, cause="2026-10", money=Decimal("7.25"), currency="GBP")
    assert _card().open == 2  # as of the refresh the first read made

    exception_summary_refresh()
    card = _card()
    assert (card.open, card.without_amount) == (4, 1)
    assert card.money == [("GBP", Decimal("7.25")), ("EUR", Decimal("0.20"))]
    groups = exception_groups(scope=ALL)
    assert [(g.cause, g.items, g.money) for g in groups] == [
        ("2026-09", 3, [("EUR", Decimal("0.20"))]),
        ("2026-10", 1, [("GBP", Decimal("7.25"))]),
    ]


def test_closed_items_leave_the_summary_at_the_next_refresh():
    items = raise_(3, start=1)
    exception_summary_refresh()
    ExceptionItem.objects.filter(pk=items[0].pk).update(status="resolved")
    exception_summary_refresh()
    assert _card().open == 2
    assert _card().trend[-1] == 3  # raised that day, open or not


def test_a_refresh_replaces_the_summary_and_twice_is_the_same_as_once():
    raise_(2, start=1, legal_entity="LB-GB")
    raise_(2, start=10, legal_entity="LB-NL", currency="GBP")
    first = exception_summary_refresh()
    rows = sorted(ExceptionSummaryRow.objects.values_list("legal_entity", "currency", "items"))
    second = exception_summary_refresh()
    assert (first.rows, second.rows) == (2, 2)
    assert (
        sorted(ExceptionSummaryRow.objects.values_list("legal_entity", "currency", "items"))
        == rows
        == [("LB-GB", "EUR", 2), ("LB-NL", "GBP", 2)]
    )


def test_past_sla_and_oldest_come_from_the_items():
    (late,) = raise_(1, start=1)
    raise_(1, start=2)
    earlier = timezone.now() - dt.timedelta(days=3)
    ExceptionItem.objects.filter(pk=late.pk).update(
        sla_due_at=earlier + dt.timedelta(hours=24), first_failed_at=earlier
    )
    exception_summary_refresh()
    card = _card()
    assert (card.past_sla, card.oldest) == (1, earlier)
    assert card.trend[-4] == 1


def test_an_empty_scope_or_queue_shows_an_empty_card():
    raise_(1, start=1, legal_entity="LB-NL")
    scoped = ExceptionScope(queues=("time_and_expense", "tax"), legal_entities=("LB-GB",))
    cards = exception_queue_cards(scope=scoped)
    assert [(c.queue, c.open, c.money, sum(c.trend)) for c in cards] == [
        ("time_and_expense", 0, [], 0),
        ("tax", 0, [], 0),
    ]
    assert exception_groups(scope=scoped) == []


def test_beat_refreshes_the_summary_every_fifteen_seconds():
    from portal.celery import _beat_schedule
    from sync.tasks import exception_summary_refresh_task

    entry = _beat_schedule()["sync-exception-summary"]
    assert (entry["task"], entry["schedule"]) == ("sync.exception_summary_refresh", 15.0)
    raise_(2, start=1)
    exception_summary_refresh_task()  # what beat runs
    assert _card().open == 2


@pytest.mark.usefixtures("eager_celery")
def test_a_portal_action_asks_for_a_refresh_once_it_commits(
    client, role_user, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    from sync.pipeline.exception_summary import PENDING_KEY

    cache.delete(PENDING_KEY)
    items = raise_(2, start=1)
    assert _card().open == 2
    client.force_login(role_user("finance"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/exceptions/{items[0].pk}/act/", {"action": "resolve", "reason": "Done."})
    assert _card().open == 1
