from __future__ import annotations

import random

import pytest

from sync.pipeline.retry import CAP_SECONDS, backoff_seconds


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (6, 64.0), (12, CAP_SECONDS)]
)
def test_backoff_grows_exponentially_under_a_cap_with_jitter_below_the_ceiling(attempt, ceiling):
    rng = random.Random(7)
    waits = [backoff_seconds(attempt=attempt, rng=rng) for _ in range(200)]
    assert all(0 <= w <= ceiling for w in waits)
    assert max(waits) > ceiling / 2  # jitter spreads, it does not collapse to zero


def test_a_retry_after_from_the_target_is_never_shortened():
    rng = random.Random(1)
    assert all(backoff_seconds(attempt=1, retry_after=30, rng=rng) >= 30 for _ in range(50))


def test_attempts_count_from_one():
    with pytest.raises(ValueError, match="from 1"):
        backoff_seconds(attempt=0)
