"""Paging: every dialect's paging expressed as `fetch(cursor) -> Page`, followed to the end.

Cursors are opaque strings to callers: a Salesforce `nextRecordsUrl`, a Kantata page number, a
SCIM startIndex, a SuiteQL offset, a Stripe `starting_after` id, a change-feed position. A pull
stopped midway resumes from the last page's `next_cursor`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sync.connectors.base import PERMANENT, Page, TransportError

# A vendor that never says "last page" must not keep a worker forever.
MAX_PAGES = 1_000_000


def pages_follow(
    fetch: Callable[[str | None], Page], *, cursor: str | None = None
) -> Iterator[Page]:
    """Yield pages from `cursor` until one has no `next_cursor`.

    Raises TransportError(PERMANENT) when a page hands back the cursor it was fetched with
    (the vendor's paging is not advancing: retrying would loop).
    """
    for _ in range(MAX_PAGES):
        page = fetch(cursor)
        yield page
        if page.next_cursor is None:
            return
        if page.next_cursor == cursor:
            raise TransportError(kind=PERMANENT, message=f"paging did not advance past {cursor!r}")
        cursor = page.next_cursor
    raise TransportError(kind=PERMANENT, message=f"more than {MAX_PAGES} pages: paging runaway")


def int_cursor(cursor: str | None, *, default: int) -> int:
    """A numeric cursor (page number, offset, startIndex); `default` when starting."""
    if cursor is None:
        return default
    if not cursor.isdigit():
        raise ValueError(f"not a cursor of this pull: {cursor!r}")
    return int(cursor)
