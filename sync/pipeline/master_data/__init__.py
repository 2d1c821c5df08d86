"""Master-data flows: ERP, HR and PSA reference records → canonical records and refs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sync.integrations.netsuite import time_bills
from sync.pipeline import target_records
from sync.pipeline.master_data import erp_projects, erp_reference, erp_workers, hr, psa
from sync.pipeline.master_data_order import PROCESSING_ORDER
from sync.pipeline.models import SyncRun
from sync.pipeline.models.exception_items import Stage
from sync.pipeline.processing import Flow, ProcessCounts, batch_process

Processor = Callable[..., ProcessCounts]


def _processor(system: str, entity: str, parse, plan) -> Processor:
    """The processor of one (system, entity): `parse` reads a payload (PayloadError), `plan`
    plans and writes the batch (master_data.engine), through the processing protocol."""
    flow = Flow(
        system=system,
        entity=entity,
        record=entity,
        read=parse,
        write=plan,
        what=f"a {entity} record",
        close_stages=(Stage.PARSE, Stage.MAP, Stage.VALIDATE),
    )

    def process(
        *, inbox_ids: Sequence[int], run: SyncRun, now: dt.datetime | None = None
    ) -> ProcessCounts:
        return batch_process(flow=flow, inbox_ids=inbox_ids, run=run, now=now)

    process.__name__ = f"{system}_{entity}_process"
    process.__doc__ = f"Process pending {system} {entity} inbox items as one batch."
    return process


currencies_process = _processor(
    "erp", "currency", erp_reference.currency_parse, erp_reference.currency_plan
)
subsidiaries_process = _processor(
    "erp", "subsidiary", erp_reference.subsidiary_parse, erp_reference.subsidiary_plan
)
accounting_periods_process = _processor(
    "erp", "accountingPeriod", erp_reference.period_parse, erp_reference.period_plan
)
departments_process = _processor(
    "erp", "department", erp_reference.department_parse, erp_reference.department_plan
)
customers_process = _processor(
    "erp", "customer", erp_projects.customer_parse, erp_projects.customer_plan
)
employees_process = _processor(
    "erp", "employee", erp_workers.employee_parse, erp_workers.employee_plan
)
jobs_process = _processor("erp", "job", erp_projects.job_parse, erp_projects.job_plan)
project_tasks_process = _processor(
    "erp", "projectTask", erp_projects.task_parse, erp_projects.task_plan
)
hr_users_process = _processor("hr", "Users", hr.user_parse, hr.user_plan)
workspaces_process = _processor("psa", "workspaces", psa.workspace_parse, psa.workspace_plan)
stories_process = _processor("psa", "stories", psa.story_parse, psa.story_plan)
assignments_process = _processor("psa", "assignments", psa.assignment_parse, psa.assignment_plan)
psa_users_process = _processor("psa", "users", psa.user_parse, psa.user_plan)

# Every processor is `(*, inbox_ids, run, now=None) -> ProcessCounts`, keyed by (inbox system,
# inbox entity); `master_data_order.PROCESSING_ORDER` says in which order a cycle runs them. The
# cycle adds ("psa", "time_entries") and approval events (they need the ERP connection).
PROCESSORS: dict[tuple[str, str], Processor] = {
    ("erp", "currency"): currencies_process,
    ("erp", "subsidiary"): subsidiaries_process,
    ("erp", "accountingPeriod"): accounting_periods_process,
    ("erp", "department"): departments_process,
    ("erp", "customer"): customers_process,
    ("erp", "employee"): employees_process,
    ("erp", "job"): jobs_process,
    ("erp", "projectTask"): project_tasks_process,
    ("hr", "Users"): hr_users_process,
    ("psa", "workspaces"): workspaces_process,
    ("psa", "stories"): stories_process,
    ("psa", "assignments"): assignments_process,
    ("psa", "users"): psa_users_process,
    # Not master data, but read like it: what the ERP already holds (target_records.py).
    ("erp", time_bills.RECORD_TYPE): target_records.time_bills_process,
}

__all__ = ["PROCESSING_ORDER", "PROCESSORS"]
