"""Vendor API requests by connection: counted in each process, summed in Redis, read by /metrics.

Every request `VendorHttp` sends is recorded here: the connection, the outcome (`2xx`, `4xx`,
`429`, `5xx`, `timeout`, `error`) and how long the vendor took. Workers are many processes, so
each adds what it counted to two Redis hashes at most once a second (`FLUSH_SECONDS`, one
pipelined round trip) and at exit; `/metrics` reads the sums (`requests_read`). Redis being
away loses those counts, never a request: recording never raises.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

# Upper bounds (seconds) of the latency histogram's buckets, Prometheus' `le`.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
REQUESTS_KEY = "ledgerbridge:connector:requests"  # "<connection>|<outcome>" → count
SECONDS_KEY = "ledgerbridge:connector:seconds"  # "<connection>|<le>" → count, "…|sum" → s
FLUSH_SECONDS = 1.0


def outcome_of(status: int | None, *, timed_out: bool = False) -> str:
    """The outcome label of one request: its status class, 429 on its own, or no answer."""
    if status is None:
        return "timeout" if timed_out else "error"
    if status == 429:
        return "429"
    return f"{status // 100}xx"


def _bucket(seconds: float) -> str:
    for bound in BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"


def redis_client() -> Any:
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)


class RequestStats:
    """This process's counts since its last flush. Thread-safe (sender threads record)."""

    def __init__(
        self,
        *,
        redis_factory: Callable[[], Any] = redis_client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis_factory = redis_factory
        self._redis: Any = None
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._buckets: Counter[str] = Counter()
        self._seconds: Counter[str] = Counter()
        self._flush_at = clock() + FLUSH_SECONDS

    def record(self, *, connection: str, outcome: str, seconds: float) -> None:
        with self._lock:
            self._requests[f"{connection}|{outcome}"] += 1
            self._buckets[f"{connection}|{_bucket(seconds)}"] += 1
            self._seconds[f"{connection}|sum"] += seconds
            due = self._clock() >= self._flush_at
        if due:
            self.flush()

    def flush(self) -> None:
        """Add what this process counted to the Redis sums (and forget it, even if Redis is
        away: metrics are not worth a growing backlog)."""
        with self._lock:
            requests, buckets, seconds = self._requests, self._buckets, self._seconds
            self._requests, self._buckets, self._seconds = Counter(), Counter(), Counter()
            self._flush_at = self._clock() + FLUSH_SECONDS
        if not requests:
            return
        try:
            if self._redis is None:
                self._redis = self._redis_factory()
            pipe = self._redis.pipeline(transaction=False)
            for field, n in requests.items():
                pipe.hincrby(REQUESTS_KEY, field, n)
            for field, n in buckets.items():
                pipe.hincrby(SECONDS_KEY, field, n)
            for field, total in seconds.items():
                pipe.hincrbyfloat(SECONDS_KEY, field, total)
            pipe.execute()
        except Exception as exc:
            logger.debug("connector request counts not stored: %s", exc)

    def close(self) -> None:
        """Flush, then close the Redis client (at exit: before the interpreter tears down the
        modules its destructor needs)."""
        self.flush()
        if self._redis is not None:
            self._redis.close()
            self._redis = None


request_stats = RequestStats()
atexit.register(request_stats.close)


def requests_read(
    redis: Any,
) -> tuple[dict[tuple[str, str], int], dict[str, tuple[list[tuple[str, int]], float]]]:
    """({(connection, outcome): count}, {connection: (cumulative [(le, count)], sum)}) as
    summed in Redis by every process."""
    counts = {  # rsplit: a connection's name may hold a "|", an outcome never does
        tuple(field.decode().rsplit("|", 1)): int(n)
        for field, n in redis.hgetall(REQUESTS_KEY).items()
    }
    per_bucket: dict[str, Counter[str]] = {}
    sums: dict[str, float] = {}
    for field, value in redis.hgetall(SECONDS_KEY).items():
        connection, part = field.decode().rsplit("|", 1)
        if part == "sum":
            sums[connection] = float(value)
        else:
            per_bucket.setdefault(connection, Counter())[part] = int(value)
    histograms = {}
    for connection, buckets in per_bucket.items():
        running, cumulative = 0, []
        for le in [*(repr(b) for b in BUCKETS), "+Inf"]:
            running += buckets.get(le, 0)
            cumulative.append((le, running))
        histograms[connection] = (cumulative, sums.get(connection, 0.0))
    return counts, histograms
