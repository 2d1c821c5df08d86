"""Every pair a run can compare, by name (one line each; quote-to-cash pairs add theirs)."""

from __future__ import annotations

from reconciliation.pairs import expenses, invoices, payments, time_bills, workers
from reconciliation.pairs.base import Pair

PAIRS: dict[str, Pair] = {
    pair.name: pair
    for pair in (
        time_bills.PAIR,
        workers.ERP_PAIR,
        workers.PSA_PAIR,
        expenses.PAIR,
        invoices.PAIR,
        payments.PAIR,
    )
}


def pair_get(name: str) -> Pair:
    """The pair called `name`. Raises KeyError naming the known pairs."""
    try:
        return PAIRS[name]
    except KeyError:
        raise KeyError(f"no reconciliation pair {name!r}; known: {sorted(PAIRS)}") from None
