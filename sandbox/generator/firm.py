"""The canonical firm: legal entities, periods, customers, rate cards, projects, workers, faults.

Pure: no database. `firm_build.firm_build(seed=, time_entries=, as_of=)` makes one, the same for
the same arguments. Money is integer minor units (cents) with the currency beside it; dates are
`date`s. The system modules (`salesforce.py`, `kantata.py`, `scim.py`, `netsuite.py`,
`stripe.py`) turn this canonical firm into each vendor's records.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

DAY = dt.timedelta(days=1)
HISTORY_MONTHS = 6  # full months of time before the as-of month
BACKLOG_DAYS = 7  # approved time of the last week is not yet posted to ERP: the sync's backlog


@dataclass(frozen=True)
class Entity:
    code: str  # Legal_Entity__c / Kantata legal_entity / NetSuite subsidiary externalId
    name: str
    country: str
    currency: str
    erp_mapped: bool  # False: the acquired entity has no NetSuite subsidiary (a planted fault)
    staffed_by: str  # whose workers deliver its projects


ENTITIES = (
    Entity("LB-US", "Ledgerbridge Consulting Inc.", "US", "USD", True, "LB-US"),
    Entity("LB-GB", "Ledgerbridge Consulting Ltd", "GB", "GBP", True, "LB-GB"),
    Entity("LB-DE", "Ledgerbridge Beratung GmbH", "DE", "EUR", True, "LB-DE"),
    Entity("LB-NL", "Ledgerbridge Advisory B.V.", "NL", "EUR", False, "LB-DE"),
)
ENTITY_BY_CODE = {entity.code: entity for entity in ENTITIES}

ROLES = ("Partner", "Director", "Manager", "Senior Consultant", "Consultant", "Analyst")
ROLE_WEIGHTS = (3, 7, 18, 30, 28, 14)
STANDARD_RATES = {  # whole currency units per hour, by role
    "USD": (450, 350, 260, 210, 170, 120),
    "GBP": (380, 300, 220, 180, 145, 100),
    "EUR": (420, 320, 240, 195, 160, 110),
}
COST_CENTRES = (("100", "Consulting"), ("200", "Technology"), ("300", "Delivery Management"))

TM, FIXED, USAGE = "Time and Materials", "Fixed Fee", "Usage"
BILLING_MODELS = (TM, FIXED, USAGE)


# -- scale -------------------------------------------------------------------------------------
SCALES = {"demo": 5_000, "small": 50_000, "large": 1_000_000}


def scale_time_entries(scale: str) -> int:
    """The time-entry count a `--scale` means: a named scale or a positive integer."""
    if scale in SCALES:
        return SCALES[scale]
    if scale.replace("_", "").isdigit() and int(scale) > 0:
        return int(scale)
    raise ValueError(
        f"scale must be one of {', '.join(SCALES)} or a positive integer, got {scale!r}"
    )


# -- the canonical firm ------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    entity: str
    start: dt.date
    end: dt.date
    closed: bool

    @property
    def name(self) -> str:
        return self.start.strftime("%b %Y")


@dataclass(eq=False)
class Customer:
    index: int
    key: str  # CRM AccountNumber and NetSuite externalId
    name: str
    country: str
    city: str
    entity: str
    currency: str
    tax_id: str | None  # None: missing tax data (planted)
    credit_status: str
    crm_duplicate: bool = False  # a second CRM Account for the same company (planted)
    erp_duplicate: bool = False  # a second NetSuite customer, keyless (planted)
    in_erp: bool = False
    projects: list[Project] = field(default_factory=list)
    lost_opportunities: int = 0
    open_opportunities: int = 0


@dataclass(eq=False)
class RateCard:
    key: str
    title: str
    currency: str
    rates: dict[str, int]  # role -> cents per hour


@dataclass(eq=False)
class Task:
    key: str  # projectTask externalId / story external_reference
    title: str
    phase: str  # "" for a phase story itself
    billable: bool
    start: dt.date
    end: dt.date
    erp: str  # "open", "closed" (ERP task complete), "missing" (PSA-only: planted unknown task)
    leaf: bool = True
    fault_only: bool = False  # only planted entries book to it


@dataclass(eq=False)
class Milestone:
    key: str
    title: str
    due: dt.date
    amount_cents: int
    completed: bool
    invoiced: bool


@dataclass(eq=False)
class Project:
    index: int
    key: str  # P-000001: workspace external_reference, NetSuite job externalId
    sow: str  # SOW-000001: Salesforce Contract SOW_Number__c
    name: str
    customer: Customer
    entity: str
    currency: str
    model: str
    start: dt.date
    end: dt.date
    rate_card: RateCard
    value_cents: int
    provisioned: bool  # has a NetSuite job and project tasks
    tasks: list[Task] = field(default_factory=list)
    milestones: list[Milestone] = field(default_factory=list)
    usage_unit_cents: int = 0
    usage_unit: str = ""
    fault_host: bool = False  # carries the planted task / placeholder faults

    @property
    def upcoming(self) -> bool:
        return not self.provisioned and ENTITY_BY_CODE[self.entity].erp_mapped


@dataclass(eq=False)
class Worker:
    index: int
    key: str  # E-00001: SCIM externalId/employeeNumber, NetSuite employee externalId
    first_name: str
    last_name: str
    email: str
    entity: str
    role: str
    cost_centre: str | None  # None: missing cost centre (planted)
    cost_rate_cents: int
    hired: dt.date
    terminated: dt.date | None
    manager: Worker | None = None
    assignments: list[tuple[Project, Task]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass(eq=False)
class Placeholder:
    index: int
    entity: str
    role: str
    assignments: list[tuple[Project, Task]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.role} (placeholder, {self.entity})"


@dataclass
class FaultPlan:
    """How many time-entry faults to plant; the activity stream plants them and counts."""

    closed_period: int
    task: int
    placeholder: int
    leak_months: set[tuple[int, str]]  # (project index, "YYYY-MM") left uninvoiced


@dataclass(eq=False)
class Firm:
    seed: int
    time_entries: int
    as_of: dt.date
    now: dt.datetime
    horizon_start: dt.date
    backlog_start: dt.date
    entities: tuple[Entity, ...]
    periods: list[Period]
    customers: list[Customer]
    rate_cards: list[RateCard]
    projects: list[Project]
    workers: list[Worker]
    placeholders: list[Placeholder]
    faults: FaultPlan

    def closed(self, day: dt.date) -> bool:
        """Whether `day` falls in a closed accounting period (every subsidiary closes the same
        months: all before the month before the as-of month)."""
        return day < month_add(month_start(self.as_of), -1)

    def invoiced_month(self, day: dt.date) -> bool:
        """Whether T&M and usage billing of `day`'s month has run (the month is over)."""
        return day < month_start(self.as_of)

    def working_days(self) -> list[dt.date]:
        days, day = [], self.horizon_start
        while day < self.as_of:
            if day.weekday() < 5:
                days.append(day)
            day += DAY
        return days


def at(day: dt.date, hour: int = 9, minute: int = 0) -> dt.datetime:
    """A timezone-aware UTC moment on `day`."""
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_add(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def stream_rng(seed: int, name: str) -> random.Random:
    """An independent, reproducible random stream per concern, so that one change in how a part
    draws does not reshuffle every other part."""
    return random.Random(f"ledgerbridge-sandbox:{seed}:{name}")
