"""Following cursors to the last page."""

from __future__ import annotations

import pytest

from sync.connectors.base import PERMANENT, Page, TransportError
from sync.connectors.paging import int_cursor, pages_follow


def test_pages_are_followed_until_one_has_no_next_cursor():
    def fetch(cursor):
        n = int_cursor(cursor, default=0)
        return Page(records=[{"n": n}], next_cursor=str(n + 1) if n < 4 else None, position=None)

    assert [p.records[0]["n"] for p in pages_follow(fetch)] == [0, 1, 2, 3, 4]
    assert [p.records[0]["n"] for p in pages_follow(fetch, cursor="3")] == [3, 4]


def test_a_vendor_cursor_that_does_not_advance_stops_the_pull_instead_of_looping():
    pages = pages_follow(
        lambda cursor: Page(records=[], next_cursor="same", position=None), cursor="same"
    )
    with pytest.raises(TransportError) as caught:
        list(pages)
    assert caught.value.kind == PERMANENT


def test_a_numeric_cursor_from_another_pull_is_refused():
    with pytest.raises(ValueError, match="not a cursor"):
        int_cursor("/services/data/v60.0/query/01g", default=1)
