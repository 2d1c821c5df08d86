"""Client-side budgets: a token bucket for request rate, a semaphore for requests in flight.

Both are per `VendorHttp` (one per connection per process). They keep one process within the
target's limits; several worker processes share a target's budget only through the target's
own 429 answers, which `http.py` classifies as transient with the vendor's Retry-After.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up. `acquire()` blocks until one is free.

    Guarantee: over any interval of length T, at most `burst + rate * T` acquisitions succeed.
    `clock` and `sleep` are injectable so that tests count requests against a fake clock
    instead of asserting timings. Thread-safe.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.burst = max(float(burst if burst is not None else rate), 1.0)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(now - self._stamp, 0.0)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._stamp = now

    def try_acquire(self) -> float:
        """Take a token if one is free and return 0.0; else return the seconds until one is."""
        with self._lock:
            self._refill()
            # A hair of tolerance: float refills may land a rounding error short of 1.0, and
            # a wait of 1e-16 s would never add it (the clock would not move).
            if self._tokens >= 1.0 - 1e-9:
                self._tokens = max(self._tokens - 1.0, 0.0)
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def acquire(self) -> None:
        while True:
            wait = self.try_acquire()
            if wait <= 0.0:
                return
            self._sleep(wait)


class ConcurrencyCap:
    """At most `limit` requests in flight; `with cap:` waits for a slot."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)

    def __enter__(self) -> ConcurrencyCap:
        self._semaphore.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._semaphore.release()
