"""Deep-paging hints of the Kantata emulator: reused large counts, keyset continuation."""

from __future__ import annotations

import pytest

from sandbox import storage
from sandbox.kantata import paging
from sandbox.kantata.paging import PagingHints


class FakeClock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_large_count_is_reused_until_it_expires():
    clock, calls = FakeClock(), []
    hints = PagingHints(clock=clock)

    def compute() -> int:
        calls.append(1)
        return 50_000

    assert hints.count("q", compute) == hints.count("q", compute) == 50_000
    assert len(calls) == 1
    clock.now += paging.COUNT_TTL_SECONDS + 1
    hints.count("q", compute)
    assert len(calls) == 2


def test_a_small_count_is_always_exact():
    hints, calls = PagingHints(), []
    for _ in range(3):
        hints.count("q", lambda: calls.append(1) or 5)
    assert len(calls) == 3


def test_page_boundaries_are_kept_only_for_large_lists():
    hints = PagingHints()
    hints.remember("q", 1, last_id=200, count=5)
    hints.remember("big", 1, last_id=200, count=50_000)
    assert hints.boundary("q", 1) is None
    assert hints.boundary("big", 1) == 200


@pytest.mark.django_db(databases=["default", "sandbox"])
def test_sequential_pages_of_a_large_list_skip_nothing_when_rows_change_between_reads(
    client, monkeypatch
):
    monkeypatch.setattr(paging, "LARGE_LIST", 10)
    monkeypatch.setattr(paging, "HINTS", PagingHints())
    monkeypatch.setattr("sandbox.kantata.views.HINTS", paging.HINTS)
    entries = [
        storage.record_create(
            system="kantata", object_type="time_entries", data={}, status="unapproved"
        )
        for _ in range(30)
    ]
    headers = {"Authorization": "Bearer sandbox-kantata-token"}
    params = {"per_page": 10, "approved": "false"}
    seen = []
    first = client.get(
        "/kantata/api/v1/time_entries.json", params={**params, "page": 1}, headers=headers
    ).json()
    seen += [r["id"] for r in first["results"]]
    # Approve one row of page 1: with OFFSET paging the rest would shift and one row be skipped.
    storage.record_update(record=entries[0], changes={}, status="approved")
    for page in (2, 3):
        body = client.get(
            "/kantata/api/v1/time_entries.json", params={**params, "page": page}, headers=headers
        ).json()
        seen += [r["id"] for r in body["results"]]
    assert seen == [str(e.pk) for e in entries]
