"""What a dashboard or a finding is limited to: legal entity, business unit and period.

A business unit is a cost centre (`sync.CostCentre.code`): the practice the work's worker belongs
to. Figures tied to a worker (time) follow it; figures that are not (milestones, usage, invoices)
cannot be split by business unit and ignore it — `Scope.splits` says which (docs/kpis.md).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from django.db.models import Q


@dataclass(frozen=True)
class Scope:
    legal_entity: str = ""  # LegalEntity.code; blank: every entity
    business_unit: str = ""  # CostCentre.code; blank: every unit
    period_from: dt.date | None = None  # first day of the first month, inclusive
    period_to: dt.date | None = None  # last day of the last month, inclusive

    def q(
        self,
        *,
        date: str,
        legal_entity: str | None = None,
        business_unit: str | None = None,
    ) -> Q:
        """The filter on a model whose date field is `date`, legal entity code lookup
        `legal_entity` and cost centre code lookup `business_unit` (None: it has none)."""
        where = Q()
        if self.period_from:
            where &= Q(**{f"{date}__gte": self.period_from})
        if self.period_to:
            where &= Q(**{f"{date}__lte": self.period_to})
        if self.legal_entity and legal_entity:
            where &= Q(**{legal_entity: self.legal_entity})
        if self.business_unit and business_unit:
            where &= Q(**{business_unit: self.business_unit})
        return where

    def as_params(self) -> dict[str, str]:
        """The scope as the dashboards' query parameters (blank ones left out)."""
        params = {
            "legal_entity": self.legal_entity,
            "business_unit": self.business_unit,
            "period_from": self.period_from.strftime("%Y-%m") if self.period_from else "",
            "period_to": self.period_to.strftime("%Y-%m") if self.period_to else "",
        }
        return {k: v for k, v in params.items() if v}


def month_first(value: dt.date) -> dt.date:
    return value.replace(day=1)


def month_last(value: dt.date) -> dt.date:
    return value.replace(day=calendar.monthrange(value.year, value.month)[1])
