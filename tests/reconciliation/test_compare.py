"""The set-based comparison over hand-made staged rows: every break kind, and what is not one."""

from __future__ import annotations

import datetime as dt

import pytest

from reconciliation.compare import (
    Candidate,
    Side,
    differences_find,
    staged_rows_attribute,
    staged_totals,
)
from reconciliation.explain import explanations_find
from reconciliation.pairs import time_bills
from reconciliation.pairs.base import Row
from reconciliation.staging import staged_rows_clear, staged_rows_write

pytestmark = pytest.mark.django_db
RUN, PAIR = 7, "time"


def row(key, external_id, *, amount=10000, quantity=750, status="live", required=True, match=""):
    return Row(
        key=key,
        match=match,
        external_id=external_id,
        required=required,
        status=status,
        quantity=quantity,
        amount=amount,
        currency="EUR",
        period="2026-10",
        legal_entity_id=None,
        project_id=None,
        record_id=None,
        approved_at=None,
    )


def found(**sides) -> set[tuple[str, str, str, tuple[str, ...]]]:
    staged_rows_write(run_id=RUN, pair=PAIR, side="s", rows=sides["source"])
    staged_rows_write(run_id=RUN, pair=PAIR, side="t", rows=sides["target"])
    staged_rows_attribute(run_id=RUN, pair=PAIR)
    return {
        (
            c.kind,
            c.key,
            c.source.external_id if c.source else "",
            tuple(sorted(t.external_id for t in c.targets)),
        )
        for c in differences_find(run_id=RUN, pair=PAIR)
    }


def test_identical_sides_have_no_break_and_equal_totals():
    rows = [row("K1", "1"), row("K2", "2", amount=33333, quantity=125)]
    assert (
        found(source=rows, target=[r._replace(external_id=f"9{r.external_id}") for r in rows])
        == set()
    )
    totals = staged_totals(run_id=RUN, pair=PAIR)
    assert totals["s"] == totals["t"] == {"EUR": (2, 875, 43333)}


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        ([row("K1", "1")], [], {("missing_in_target", "K1", "1", ())}),
        ([], [row("K1", "91")], {("missing_in_source", "K1", "", ("91",))}),
        # A rejected entry without a bill is no break; with a live bill it is a status one.
        ([row("K1", "1", status="void", required=False)], [], set()),
        (
            [row("K1", "1", status="void", required=False)],
            [row("K1", "91")],
            {("status_mismatch", "K1", "1", ("91",))},
        ),
        (
            [row("K1", "1")],
            [row("K1", "91", amount=10001)],
            {("amount_mismatch", "K1", "1", ("91",))},
        ),
        (
            [row("K1", "1")],
            [row("K1", "91", quantity=800)],
            {("amount_mismatch", "K1", "1", ("91",))},
        ),
        (
            [row("K1", "1")],
            [row("K1", "91"), row("K1", "92")],
            {("duplicate", "K1", "1", ("91", "92"))},
        ),
        # A keyless copy is attributed by its natural key: a duplicate of the entry it copies.
        (
            [row("K1", "1", match="e|d|t|750")],
            [row("K1", "91", match="e|d|t|750"), row(None, "92", match="e|d|t|750")],
            {("duplicate", "K1", "1", ("91", "92"))},
        ),
        # A keyless record that copies nothing is missing in the source under its own id.
        (
            [],
            [row(None, "92", match="x|y|z|1")],
            {("missing_in_source", "unkeyed:92", "", ("92",))},
        ),
    ],
)
def test_each_difference_is_one_break_of_its_kind(source, target, expected):
    assert found(source=source, target=target) == expected


def test_another_runs_or_pairs_rows_are_not_compared_and_a_run_clears_its_own():
    staged_rows_write(run_id=RUN + 1, pair=PAIR, side="t", rows=[row("K1", "91")])
    staged_rows_write(run_id=RUN, pair="workers_erp", side="t", rows=[row("K1", "91")])
    assert found(source=[row("K1", "1")], target=[]) == {("missing_in_target", "K1", "1", ())}
    staged_rows_clear(run_id=RUN)
    assert differences_find(run_id=RUN, pair=PAIR) == []


def test_time_approved_after_the_cut_off_is_explained_and_earlier_time_is_not():
    cutoff = dt.datetime(2026, 11, 16, 6, tzinfo=dt.UTC)
    late, early = (
        Candidate(
            kind="missing_in_target",
            key=f"KT-TE-{n}",
            source=Side(str(n)),
            approved_at=cutoff + dt.timedelta(minutes=m),
        )
        for n, m in ((1, 1), (2, -1))
    )
    reasons = explanations_find(pair=time_bills.PAIR, candidates=[late, early], cutoff=cutoff)
    assert reasons[0].startswith("approved at 2026-11-16T06:01")
    assert reasons[1] == ""
