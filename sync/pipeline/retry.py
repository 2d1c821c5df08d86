"""Retry timing for deliveries: capped exponential backoff with full jitter. Pure, no database."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

MAX_ATTEMPTS = 8
BASE_SECONDS = 2.0
CAP_SECONDS = 600.0


def backoff_seconds(
    *,
    attempt: int,
    retry_after: float | None = None,
    rng: random.Random | None = None,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1).

    Full jitter (uniform in [0, min(cap, base * 2**(attempt-1))]) spreads retries of many
    workers apart; a target's Retry-After is a floor, never shortened.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    ceiling = min(cap, base * 2 ** (attempt - 1))
    wait = (rng or random).uniform(0, ceiling)  # jitter, not security
    return max(wait, retry_after or 0.0)


def next_attempt_at(
    *,
    now: datetime,
    attempt: int,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> datetime:
    wait = backoff_seconds(attempt=attempt, retry_after=retry_after, rng=rng)
    return now + timedelta(seconds=wait)
