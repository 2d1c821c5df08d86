"""Building the firm's master data for a seed and a scale, and choosing where faults go.

Pure and deterministic: every concern draws from its own seeded stream (`stream_rng`).
"""

from __future__ import annotations

import datetime as dt
import math
import random

from sandbox.generator.firm import (
    BACKLOG_DAYS,
    BILLING_MODELS,
    COST_CENTRES,
    DAY,
    ENTITIES,
    ENTITY_BY_CODE,
    FIXED,
    HISTORY_MONTHS,
    ROLE_WEIGHTS,
    ROLES,
    STANDARD_RATES,
    TM,
    USAGE,
    Customer,
    FaultPlan,
    Firm,
    Milestone,
    Period,
    Placeholder,
    Project,
    RateCard,
    Task,
    Worker,
    month_add,
    month_key,
    month_start,
    stream_rng,
)

FIRST_NAMES = (
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elif",
    "Farah",
    "Gus",
    "Hana",
    "Ivan",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Nils",
    "Olga",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Uma",
    "Victor",
    "Wen",
    "Xavi",
    "Yara",
    "Zoe",
    "Amir",
    "Bea",
    "Carl",
    "Dana",
    "Emil",
    "Fiona",
    "Gita",
    "Hugo",
)
LAST_NAMES = (
    "Adler",
    "Bauer",
    "Clarke",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hughes",
    "Ivanova",
    "Jensen",
    "Khan",
    "Larsen",
    "Meyer",
    "Novak",
    "O'Neill",
    "Patel",
    "Quist",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Urban",
    "Vogel",
    "Walsh",
    "Xu",
    "Young",
    "Zimmer",
    "Berg",
    "Costa",
    "Dahl",
    "Engel",
)
NAME_ADJECTIVES = (
    "Northwind",
    "Blue",
    "Granite",
    "Silver",
    "Harbor",
    "Summit",
    "Cedar",
    "Atlas",
    "Vertex",
    "Lumen",
    "Pioneer",
    "Redwood",
    "Orbit",
    "Keystone",
    "Meridian",
    "Nova",
    "Polar",
    "Quantum",
    "Riverside",
    "Sterling",
    "Tidal",
    "Union",
    "Vista",
    "Westgate",
    "Zenith",
    "Alpine",
    "Beacon",
    "Crescent",
    "Delta",
    "Evergreen",
)
NAME_NOUNS = (
    "Logistics",
    "Foods",
    "Health",
    "Energy",
    "Retail",
    "Capital",
    "Pharma",
    "Media",
    "Motors",
    "Textiles",
    "Telecom",
    "Insurance",
    "Chemicals",
    "Software",
    "Airlines",
    "Hotels",
    "Bank",
    "Foundry",
    "Robotics",
    "Utilities",
    "Shipping",
    "Brewing",
    "Optics",
    "Analytics",
    "Clinics",
)
LEGAL_FORMS = {"US": "Inc.", "GB": "Ltd", "DE": "GmbH", "AT": "GmbH", "FR": "SAS", "NL": "B.V."}
CITIES = {
    "US": ("New York", "Chicago", "Austin", "Boston"),
    "GB": ("London", "Manchester", "Leeds", "Bristol"),
    "DE": ("Berlin", "Munich", "Hamburg", "Frankfurt"),
    "AT": ("Vienna", "Graz"),
    "FR": ("Paris", "Lyon"),
    "NL": ("Amsterdam", "Rotterdam", "Utrecht"),
}


def firm_build(*, seed: int, time_entries: int, as_of: dt.date) -> Firm:
    """The firm for a seed, a time-entry count and an as-of date. Deterministic."""
    horizon_start = month_add(month_start(as_of), -HISTORY_MONTHS)
    now = dt.datetime.combine(as_of, dt.time(6, 0), tzinfo=dt.UTC)
    days = 0
    day = horizon_start
    while day < as_of:
        days += day.weekday() < 5
        day += DAY
    workers_needed = max(12, math.ceil(time_entries / days * 1.15))
    project_count = max(16, math.ceil(workers_needed / 4))
    customer_count = max(12, math.ceil(project_count / 2))

    periods = _periods(as_of=as_of, horizon_start=horizon_start)
    rate_cards = [
        RateCard(f"RC-STD-{cur}", f"Standard {cur}", cur, _rates(cur, 100))
        for cur in sorted(STANDARD_RATES)
    ]
    customers = _customers(seed, customer_count)
    projects = _projects(seed, project_count, customers, rate_cards, horizon_start, as_of)
    workers = _workers(seed, workers_needed, projects, horizon_start, as_of)
    placeholders = _placeholders(projects)
    _customer_faults(seed, customers)
    for customer in customers:
        customer.in_erp = bool(customer.projects) and ENTITY_BY_CODE[customer.entity].erp_mapped
    firm = Firm(
        seed=seed,
        time_entries=time_entries,
        as_of=as_of,
        now=now,
        horizon_start=horizon_start,
        backlog_start=as_of - dt.timedelta(days=BACKLOG_DAYS),
        entities=ENTITIES,
        periods=periods,
        customers=customers,
        rate_cards=rate_cards,
        projects=projects,
        workers=workers,
        placeholders=placeholders,
        faults=FaultPlan(closed_period=0, task=0, placeholder=0, leak_months=set()),
    )
    firm.faults = _fault_plan(seed, firm)
    return firm


def _rates(currency: str, percent: int) -> dict[str, int]:
    # Whole currency units per hour (then cents), so that a quarter-hour's value is exact;
    # integer arithmetic, rounding half up.
    return {
        role: (rate * percent + 50) // 100 * 100
        for role, rate in zip(ROLES, STANDARD_RATES[currency], strict=True)
    }


def _periods(*, as_of: dt.date, horizon_start: dt.date) -> list[Period]:
    open_from = month_add(month_start(as_of), -1)
    periods = []
    for entity in ENTITIES:
        if not entity.erp_mapped:
            continue
        start = month_add(horizon_start, -(horizon_start.month - 1))  # 1 January
        last = month_add(month_start(as_of), 2)
        while start <= last:
            end = month_add(start, 1) - DAY
            periods.append(Period(entity.code, start, end, closed=start < open_from))
            start = month_add(start, 1)
    return periods


def _customers(seed: int, count: int) -> list[Customer]:
    rng = stream_rng(seed, "customers")
    customers: list[Customer] = []
    seen: set[str] = set()
    for index in range(count):
        # Every fifteenth customer is served by the acquired, ERP-unmapped entity.
        if index % 15 == 4:
            entity = ENTITY_BY_CODE["LB-NL"]
        else:
            entity = rng.choices(ENTITIES[:3], weights=(40, 32, 28))[0]
        country = entity.country
        if entity.code == "LB-DE":
            country = rng.choices(("DE", "AT", "FR"), weights=(80, 10, 10))[0]
        base = f"{rng.choice(NAME_ADJECTIVES)} {rng.choice(NAME_NOUNS)}"
        name = f"{base} {LEGAL_FORMS[country]}"
        if name in seen:
            name = f"{base} {index} {LEGAL_FORMS[country]}"
        seen.add(name)
        customers.append(
            Customer(
                index=index,
                key=f"C-{index + 1:05d}",
                name=name,
                country=country,
                city=rng.choice(CITIES[country]),
                entity=entity.code,
                currency=entity.currency,
                tax_id=_tax_id(rng, country),
                credit_status=rng.choices(("Approved", "Pending"), weights=(92, 8))[0],
                lost_opportunities=rng.choice((0, 0, 1, 1, 2)),
                open_opportunities=rng.choice((0, 1, 1, 2)),
            )
        )
    return customers


def _tax_id(rng: random.Random, country: str) -> str:
    digits = f"{rng.randrange(10**8, 10**9)}"
    if country == "US":
        return f"{digits[:2]}-{digits[2:]}{rng.randrange(10)}"
    if country == "NL":
        return f"NL{digits}B01"
    if country == "FR":
        return f"FR{rng.randrange(10, 99)}{digits}"
    if country == "AT":
        return f"ATU{digits[:8]}"
    return f"{country}{digits}"


def _projects(seed, count, customers, rate_cards, horizon_start, as_of) -> list[Project]:
    rng = stream_rng(seed, "projects")
    standard = {card.currency: card for card in rate_cards}
    negotiated: dict[int, RateCard] = {}
    active_customers = max(1, math.ceil(len(customers) * 0.8))
    upcoming = max(1, count // 50)
    projects: list[Project] = []
    for index in range(count + upcoming):
        customer = customers[index % active_customers]
        is_upcoming = index >= count
        if is_upcoming and not ENTITY_BY_CODE[customer.entity].erp_mapped:
            customer = next(c for c in customers if ENTITY_BY_CODE[c.entity].erp_mapped)
        model = (
            BILLING_MODELS[index]
            if index < 3
            else rng.choices(BILLING_MODELS, weights=(60, 25, 15))[0]
        )
        if not ENTITY_BY_CODE[customer.entity].erp_mapped:
            # The acquired entity sells time and materials only, so that everything it is owed
            # is its approved time (reported under project_legal_entity_unmapped).
            model = TM
        if customer.index % 4 == 1 and customer.index not in negotiated:
            card = RateCard(
                f"RC-{customer.key}",
                f"{customer.name} negotiated",
                customer.currency,
                _rates(customer.currency, 90),
            )
            negotiated[customer.index] = card
            rate_cards.append(card)
        card = negotiated.get(customer.index, standard[customer.currency])
        if is_upcoming:
            start = as_of + dt.timedelta(days=rng.randint(5, 30))
        else:
            start = horizon_start + dt.timedelta(days=rng.randint(-150, 60))
        end = start + dt.timedelta(days=rng.randint(240, 480))
        project = Project(
            index=index,
            key=f"P-{index + 1:06d}",
            sow=f"SOW-{index + 1:06d}",
            name=f"{customer.name.rsplit(' ', 1)[0]} {rng.choice(PROJECT_KINDS)}",
            customer=customer,
            entity=customer.entity,
            currency=customer.currency,
            model=model,
            start=start,
            end=end,
            rate_card=card,
            value_cents=0,
            provisioned=not is_upcoming and ENTITY_BY_CODE[customer.entity].erp_mapped,
        )
        _wbs(rng, project, horizon_start, as_of)
        project.value_cents = _project_value(rng, project)
        customer.projects.append(project)
        projects.append(project)
    # Task and placeholder faults live on a few ordinary, ERP-provisioned T&M projects.
    hosts = [p for p in projects if p.provisioned and p.model == TM][: max(2, min(20, count // 10))]
    for project in hosts:
        project.fault_host = True
        closed_end = horizon_start + dt.timedelta(days=40)
        project.tasks.append(
            Task(
                f"{project.key}.0.1",
                "Mobilisation",
                "Discovery",
                True,
                min(project.start, closed_end - dt.timedelta(days=30)),
                closed_end,
                "closed",
            )
        )
        project.tasks.append(
            Task(
                f"{project.key}.9.1",
                "Change request CR-1",
                "Delivery",
                True,
                project.start,
                project.end,
                "missing",
                fault_only=True,
            )
        )
    return projects


PROJECT_KINDS = (
    "ERP rollout",
    "Data platform",
    "Finance transformation",
    "CRM implementation",
    "Cloud migration",
    "Supply chain review",
    "Managed analytics",
    "Security programme",
)
PHASES = (
    ("1", "Discovery", ("Requirements", "Solution design")),
    ("2", "Delivery", ("Build", "Testing", "Deployment")),
)


def _wbs(rng: random.Random, project: Project, horizon_start: dt.date, as_of: dt.date) -> None:
    billable = project.model == TM
    for code, phase, leaves in PHASES:
        project.tasks.append(
            Task(
                f"{project.key}.{code}",
                phase,
                "",
                billable,
                project.start,
                project.end,
                "open",
                leaf=False,
            )
        )
        for number, title in enumerate(leaves, start=1):
            project.tasks.append(
                Task(
                    f"{project.key}.{code}.{number}",
                    title,
                    phase,
                    billable,
                    project.start,
                    project.end,
                    "open",
                )
            )
    project.tasks.append(
        Task(
            f"{project.key}.3.1",
            "Project management (non-billable)",
            "Delivery",
            False,
            project.start,
            project.end,
            "open",
        )
    )
    if project.model == FIXED:
        count = rng.choice((3, 4))
        span = (project.end - project.start).days
        for number in range(1, count + 1):
            due = project.start + dt.timedelta(days=span * number // (count + 1))
            completed = due < as_of - DAY
            project.milestones.append(
                Milestone(
                    f"{project.key}.M{number}",
                    f"Milestone {number}",
                    due,
                    0,
                    completed,
                    invoiced=completed,
                )
            )
    if project.model == USAGE:
        project.usage_unit = rng.choice(("service request", "managed user", "report run"))
        project.usage_unit_cents = rng.choice((25, 35, 45, 60, 90)) * 100


def _project_value(rng: random.Random, project: Project) -> int:
    if project.model == FIXED:
        per_milestone = rng.randint(20, 120) * 1_000_00
        for milestone in project.milestones:
            milestone.amount_cents = per_milestone
        return per_milestone * len(project.milestones)
    if project.model == USAGE:
        return project.usage_unit_cents * rng.randint(150, 400) * 12
    return rng.randint(800, 4_000) * project.rate_card.rates["Consultant"]


def _workers(seed, count, projects, horizon_start, as_of) -> list[Worker]:
    rng = stream_rng(seed, "workers")
    staffing: dict[str, list[Project]] = {}
    for project in projects:
        if not project.upcoming:
            staffing.setdefault(ENTITY_BY_CODE[project.entity].staffed_by, []).append(project)
    entities = sorted(staffing)
    weights = [len(staffing[code]) for code in entities]
    workers: list[Worker] = []
    seen_emails: set[str] = set()
    for index in range(count):
        entity = (
            entities[index % len(entities)]
            if index < len(entities)
            else rng.choices(entities, weights=weights)[0]
        )
        role = rng.choices(ROLES, weights=ROLE_WEIGHTS)[0]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        local = f"{first}.{last}".lower().replace("'", "")
        email = f"{local}@ledgerbridge.example"
        if email in seen_emails:
            email = f"{local}.{index + 1}@ledgerbridge.example"
        seen_emails.add(email)
        if rng.random() < 0.08:
            hired = horizon_start + dt.timedelta(days=rng.randint(15, 120))
        else:
            hired = horizon_start - dt.timedelta(days=rng.randint(60, 3000))
        terminated = None
        if rng.random() < 0.05:
            terminated = max(hired, horizon_start) + dt.timedelta(days=rng.randint(20, 120))
            terminated = min(terminated, as_of - dt.timedelta(days=20))
        currency = ENTITY_BY_CODE[entity].currency
        bill = STANDARD_RATES[currency][ROLES.index(role)]
        worker = Worker(
            index=index,
            key=f"E-{index + 1:05d}",
            first_name=first,
            last_name=last,
            email=email,
            entity=entity,
            role=role,
            cost_centre=f"{entity[-2:]}-{rng.choice(COST_CENTRES)[0]}",
            cost_rate_cents=(bill * 42 + 50) // 100 * 100,  # 42 % of the bill rate
            hired=hired,
            terminated=terminated,
        )
        pool = staffing[entity]
        choices = [pool[index % len(pool)]]
        if rng.random() < 0.5 and len(pool) > 1:
            choices.append(pool[(index * 7 + 3) % len(pool)])
        for project in dict.fromkeys(choices):
            leaves = [t for t in project.tasks if t.leaf and not t.fault_only]
            for task in rng.sample(leaves, k=min(len(leaves), rng.choice((2, 3)))):
                worker.assignments.append((project, task))
        workers.append(worker)
    managers: dict[str, list[Worker]] = {}
    for worker in workers:
        if worker.role in ("Partner", "Director"):
            managers.setdefault(worker.entity, []).append(worker)
    for worker in workers:
        candidates = [m for m in managers.get(worker.entity, []) if m is not worker]
        if candidates:
            worker.manager = candidates[worker.index % len(candidates)]
    # Planted: workers without a cost centre (HR never set it; ERP cannot cost their time).
    eligible = [
        w
        for w in workers
        if w.terminated is None and w.hired < horizon_start and ENTITY_BY_CODE[w.entity].erp_mapped
    ]
    for worker in stream_rng(seed, "no-cost-centre").sample(
        eligible, k=min(len(eligible), max(1, count // 150))
    ):
        worker.cost_centre = None
    return workers


def _placeholders(projects: list[Project]) -> list[Placeholder]:
    placeholders: list[Placeholder] = []
    for entity in ENTITIES:
        if not entity.erp_mapped:
            continue
        for role in ("Senior Consultant", "Consultant"):
            placeholders.append(Placeholder(len(placeholders), entity.code, role))
    by_entity = {p.entity: p for p in placeholders if p.role == "Consultant"}
    for project in projects:
        if project.fault_host or project.upcoming:
            task = next(t for t in project.tasks if t.leaf and t.erp == "open")
            holder = by_entity.get(ENTITY_BY_CODE[project.entity].staffed_by)
            if holder is not None:
                holder.assignments.append((project, task))
    return placeholders


def _customer_faults(seed: int, customers: list[Customer]) -> None:
    rng = stream_rng(seed, "customer-faults")
    with_projects = [c for c in customers if c.projects and ENTITY_BY_CODE[c.entity].erp_mapped]
    picked = rng.sample(
        with_projects,
        k=min(
            len(with_projects),
            max(2, len(customers) // 40)
            + max(2, len(customers) // 25)
            + max(1, len(customers) // 80),
        ),
    )
    crm_dups = max(2, len(customers) // 40)
    no_tax = max(2, len(customers) // 25)
    for customer in picked[:crm_dups]:
        customer.crm_duplicate = True
    for customer in picked[crm_dups : crm_dups + no_tax]:
        customer.tax_id = None
    for customer in picked[crm_dups + no_tax :]:
        customer.erp_duplicate = True


def _fault_plan(seed: int, firm: Firm) -> FaultPlan:
    n = firm.time_entries
    rng = stream_rng(seed, "leaks")
    months = []
    day = firm.horizon_start
    while day < month_start(firm.as_of):
        months.append(day)
        day = month_add(day, 1)
    candidates = [
        (project.index, month_key(month))
        for project in firm.projects
        if project.model == TM and project.provisioned and not project.fault_host
        for month in months
        if project.start <= month and month_add(month, 1) <= project.end
    ]
    leaks = rng.sample(candidates, k=min(len(candidates), max(2, len(candidates) // 100)))
    completed = [m for p in firm.projects for m in p.milestones if m.completed]
    for milestone in rng.sample(completed, k=min(len(completed), max(1, len(completed) // 15))):
        milestone.invoiced = False  # planted: the milestone is done but nobody billed it
    return FaultPlan(
        closed_period=max(3, n // 1500),
        task=max(4, n // 1500),
        placeholder=max(3, n // 2000),
        leak_months=set(leaks),
    )
