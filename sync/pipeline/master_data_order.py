"""The order a sync cycle processes inbox entities in, so that every reference exists first.

Keys are (inbox system, inbox entity): the entity names the connectors' `pull(entity=…)` take.
Why this order: currencies before the subsidiaries that name them; subsidiaries (legal
entities) before periods, departments, customers and HR workers; HR workers before the ERP
employees and PSA users that link to them; customers before ERP jobs, jobs before their
project tasks; ERP projects and tasks before the PSA workspaces and stories that link to them;
PSA assignments before PSA users (a role placeholder's project comes from its assignments);
and all of it before time. The ERP's time bills come before PSA data: PSA time entries are
posted knowing which of them the ERP holds already (history posted before Ledgerbridge).
"""

from __future__ import annotations

PROCESSING_ORDER: list[tuple[str, str]] = [
    ("erp", "currency"),
    ("erp", "subsidiary"),
    ("erp", "accountingPeriod"),
    ("erp", "department"),
    ("erp", "customer"),
    ("hr", "Users"),
    ("erp", "employee"),
    ("erp", "job"),
    ("erp", "projectTask"),
    ("erp", "timeBill"),
    ("psa", "workspaces"),
    ("psa", "stories"),
    ("psa", "assignments"),
    ("psa", "users"),
    ("psa", "time_entries"),
]
