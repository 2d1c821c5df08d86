"""Keeping deep page/per_page paging cheap on large lists (a million time entries).

Kantata pages by number, which on a database means COUNT(*) plus OFFSET: at 1,000,000 rows a
count costs ~0.3 s and page 4,000 ~1 s on PostgreSQL, so a full read would take over an hour of
emulator time alone. For result sets of at least LARGE_LIST rows only (small lists, and so the
contract tests, stay exact):

- the count of a query is reused for COUNT_TTL_SECONDS (so `meta.count` may lag new rows by
  that long: a documented difference from the real service);
- when a client asks for page p+1 of an id-ordered list right after page p, the page starts
  after page p's last id (keyset) instead of at an OFFSET. A row approved between two page reads
  can therefore appear on a later page instead of shifting the rest, i.e. nothing is skipped.

Hints live in process memory, bounded (LRU), and are lost on restart (then the slow path runs).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

LARGE_LIST = 10_000
COUNT_TTL_SECONDS = 30.0
MAX_HINTS = 20_000


class PagingHints:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: OrderedDict[Hashable, tuple[float, int]] = OrderedDict()
        self._boundaries: OrderedDict[Hashable, int] = OrderedDict()

    def count(self, key: Hashable, compute: Callable[[], int]) -> int:
        now = self._clock()
        with self._lock:
            cached = self._counts.get(key)
        if cached is not None and now - cached[0] < COUNT_TTL_SECONDS:
            return cached[1]
        value = compute()
        if value >= LARGE_LIST:
            with self._lock:
                self._counts[key] = (now, value)
                self._counts.move_to_end(key)
                while len(self._counts) > MAX_HINTS:
                    self._counts.popitem(last=False)
        return value

    def boundary(self, key: Hashable, page: int) -> int | None:
        """The last id of `page` if it was served (for keyset continuation), else None."""
        with self._lock:
            return self._boundaries.get((key, page))

    def remember(self, key: Hashable, page: int, last_id: int, count: int) -> None:
        if count < LARGE_LIST:
            return
        with self._lock:
            self._boundaries[(key, page)] = last_id
            self._boundaries.move_to_end((key, page))
            while len(self._boundaries) > MAX_HINTS:
                self._boundaries.popitem(last=False)


HINTS = PagingHints()
