"""FaultBook: deterministic draws, budgets, concurrency slots, settings checks. Pure, no DB."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.core.faults import Busy, FaultBook, FaultConfig, OverBudget, fault_config_merge


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def decisions(book: FaultBook, targets: list[str]) -> list[tuple]:
    return [
        (d.error_status, d.delay_seconds, d.drop)
        for d in (
            book.decide(system="kantata", method="POST", target=t, body=b"{}") for t in targets
        )
    ]


@given(
    seed=st.integers(min_value=0, max_value=2**32),
    targets=st.lists(st.sampled_from(["/a", "/b", "/c?x=1"]), min_size=1, max_size=30),
)
def test_the_same_seed_and_requests_always_draw_the_same_faults(seed, targets):
    settings = {"error_rate": 0.3, "slow_rate": 0.3, "slow_seconds": 1, "drop_rate": 0.3}
    first, second = FaultBook(seed=seed), FaultBook(seed=seed)
    for book in (first, second):
        book.configure(system="kantata", changes=settings)
    assert decisions(first, targets) == decisions(second, targets)


def test_different_requests_interleaved_differently_still_get_their_own_faults():
    settings = {"error_rate": 0.5}
    a, b = FaultBook(seed=5), FaultBook(seed=5)
    for book in (a, b):
        book.configure(system="kantata", changes=settings)
    in_order = dict(zip(["/x", "/y", "/z"], decisions(a, ["/x", "/y", "/z"]), strict=True))
    reversed_ = dict(zip(["/z", "/y", "/x"], decisions(b, ["/z", "/y", "/x"]), strict=True))
    assert in_order == reversed_


def test_configuring_again_restarts_the_draw():
    book = FaultBook(seed=5)
    book.configure(system="kantata", changes={"error_rate": 0.5})
    first = decisions(book, ["/x"] * 10)
    book.configure(system="kantata", changes={"error_rate": 0.5})
    assert decisions(book, ["/x"] * 10) == first


def test_with_no_faults_configured_nothing_is_drawn():
    book = FaultBook(seed=5)
    assert decisions(book, ["/x"]) == [(None, 0.0, False)]


def test_an_error_and_a_drop_never_hit_the_same_request():
    book = FaultBook(seed=5)
    book.configure(system="kantata", changes={"error_rate": 0.5, "drop_rate": 1})
    for status, _delay, drop in decisions(book, [f"/{n}" for n in range(50)]):
        assert not (status and drop)


def test_the_budget_refuses_over_the_limit_and_refills_in_the_next_window():
    clock = FakeClock()
    book = FaultBook(clock=clock)
    book.configure(system="salesforce", changes={"rate_limit": 2, "rate_window_seconds": 60})
    assert book.spend(system="salesforce") == (1, 2)
    assert book.spend(system="salesforce") == (2, 2)
    with pytest.raises(OverBudget) as refused:
        book.spend(system="salesforce")
    assert (refused.value.used, refused.value.limit) == (2, 2)
    clock.now += 61
    assert book.spend(system="salesforce") == (1, 2)


def test_a_concurrency_slot_is_refused_over_the_limit_and_freed_on_leave():
    book = FaultBook()
    book.configure(system="scim", changes={"concurrency_limit": 1})
    book.enter(system="scim")
    with pytest.raises(Busy):
        book.enter(system="scim")
    book.leave(system="scim")
    book.enter(system="scim")


def test_dialect_defaults_survive_a_reset():
    book = FaultBook()
    book.defaults_add({"salesforce": {"rate_limit": 100}})
    book.configure(system="salesforce", changes={"rate_limit": 5, "error_rate": 0.1})
    book.reset()
    assert book.config("salesforce").rate_limit == 100
    assert book.config("salesforce").error_rate == 0.0


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": 1.5},
        {"error_rate": "often"},
        {"drop_mode": "explode"},
        {"error_statuses": [404]},
        {"rename_fields": ["Name"]},
        {"colour": "red"},
    ],
)
def test_bad_settings_are_refused(changes):
    with pytest.raises(ValueError, match=r"."):
        fault_config_merge(FaultConfig(), changes)


def test_settings_from_the_command_line_are_coerced():
    config = fault_config_merge(
        FaultConfig(),
        {
            "error_rate": "0.2",
            "rate_limit": "50",
            "error_statuses": "502,504",
            "concurrency_limit": "off",
        },
    )
    assert (config.error_rate, config.rate_limit, config.error_statuses) == (0.2, 50, [502, 504])
    assert config.concurrency_limit is None
