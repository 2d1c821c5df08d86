"""The token bucket and the concurrency cap, on a fake clock (no timing assertions)."""

from __future__ import annotations

import threading

import pytest

from sync.connectors.limits import ConcurrencyCap, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_full_bucket_serves_its_burst_without_waiting_then_paces_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=4, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        bucket.acquire()
    assert clock.slept == []
    bucket.acquire()
    assert clock.now == pytest.approx(100.5)


@pytest.mark.parametrize(("rate", "burst"), [(1, 1), (5, 5), (10, 3), (0.5, 2)])
def test_no_interval_ever_holds_more_acquisitions_than_burst_plus_rate_times_its_length(
    rate, burst
):
    clock = FakeClock()
    bucket = TokenBucket(rate=rate, burst=burst, clock=clock, sleep=clock.sleep)
    stamps = []
    for _ in range(100):
        bucket.acquire()
        stamps.append(clock.now)
    for i, start in enumerate(stamps):
        for end in stamps[i:]:
            held = sum(1 for t in stamps if start <= t <= end)
            assert held <= burst + rate * (end - start) + 1e-6


def test_unused_time_saves_no_more_than_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=3, clock=clock, sleep=clock.sleep)
    clock.now += 3600
    for _ in range(3):
        assert bucket.try_acquire() == 0.0
    assert bucket.try_acquire() > 0.0


def test_a_rate_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(rate=0)


def test_the_cap_admits_no_more_holders_than_its_limit():
    cap = ConcurrencyCap(2)
    inside = 0
    peak = 0
    lock = threading.Lock()
    go = threading.Event()

    def hold():
        nonlocal inside, peak
        with cap:
            with lock:
                inside += 1
                peak = max(peak, inside)
            go.wait(timeout=5)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=hold) for _ in range(6)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(timeout=10)
    assert 1 <= peak <= 2
