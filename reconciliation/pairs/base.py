"""What a reconciliation pair is: how it stages its source and target rows, and what a break of
it means to the people who fix it. A quote-to-cash pair plugs in with one `Pair` definition
(docs/reconciliation.md, "Adding a pair")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple


class Row(NamedTuple):
    """One staged record (reconciliation.models.StagedRow without run, pair and side)."""

    key: str | None
    match: str
    external_id: str
    required: bool
    status: str
    quantity: int | None  # hundredths (hours x 100)
    amount: int | None  # the currency's minor units
    currency: str
    period: str
    legal_entity_id: int | None
    project_id: int | None
    record_id: int | None
    approved_at: dt.datetime | None


@dataclass(frozen=True)
class Scope:
    """What a run covers. `period` ("YYYY-MM") bounds dated records; `cutoff` is the run's
    start: source records approved after it are explained, not broken."""

    cutoff: dt.datetime
    period: str = ""
    legal_entity_id: int | None = None
    project_id: int | None = None

    @property
    def dates(self) -> tuple[dt.date | None, dt.date | None]:
        if not self.period:
            return None, None
        first = dt.date.fromisoformat(f"{self.period}-01")
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return first, following - dt.timedelta(days=1)

    def keeps(self, *, legal_entity_id: int | None, project_id: int | None) -> bool:
        """Whether a row of this legal entity and project is inside the scope."""
        if self.legal_entity_id is not None and legal_entity_id != self.legal_entity_id:
            return False
        return self.project_id is None or project_id == self.project_id


@dataclass(frozen=True)
class Explaining:
    """Where to look for what explains a break: the pipeline record keys of the records on
    either side (an open item of the pipeline for one of them explains it)."""

    record_keys: list[str]


@dataclass(frozen=True)
class Pair:
    """One reconciliation pair.

    - `source_rows(scope)`: the source side as Ledgerbridge's canonical rows (what the source
      said, as pulled), yielded in batches of Rows; with `source_system` set,
      `source_rows(scope, connector)` reads the source through that system's own API instead.
    - `target_rows(scope, connector)`: the target side read through the target's own API.
    - `target_system`: the Connection.system whose connector `target_rows` is given.
    - `attribute`: target rows without a key are matched to a source row by `match` first.
    - `explaining([(source external id, [target external ids]), …])`: where the explanations
      of those breaks are looked up, one Explaining each, in a fixed number of queries.
    - `queue`, `fixes` (per break kind), `money`: the exception item a new break raises.
    - `delivery_model`: see the field.
    """

    name: str
    label: str
    source_rows: Callable[..., Iterable[list[Row]]]
    target_rows: Callable[[Scope, Any], Iterable[list[Row]]]
    target_system: str
    queue: str
    explaining: Callable[[list[tuple[str, list[str]]]], list[Explaining]]
    fixes: dict[str, str] = field(default_factory=dict)
    money: bool = False
    # The canonical model the source rows' record ids belong to, when Ledgerbridge delivers it
    # to the target: its deliveries explain a break while in flight, and replay fixes one.
    delivery_model: Any = None
    attribute: bool = False
    # The Connection.system whose connector `source_rows` is given ("": canonical rows).
    source_system: str = ""


def minor_units(value: Decimal, *, digits: int) -> int:
    """`value` in a currency's minor units, rounded half-up (the ERP's rounding of an extended
    line amount)."""
    return int((value * (Decimal(10) ** digits)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_minor(value: int | None, *, digits: int) -> Decimal | None:
    return None if value is None else Decimal(value).scaleb(-digits)


def hundredths(value: Decimal) -> int:
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def batched(rows: Iterable[Row], size: int = 5000) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
