"""The expense-posting processors a cycle runs, by (inbox system, inbox entity), in order."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from sync.integrations.netsuite import expense_reports
from sync.pipeline.expense_posting.erp_reports import expense_reports_process
from sync.pipeline.expense_posting.flow import INBOX_ENTITY, expenses_process
from sync.pipeline.models import Connection
from sync.pipeline.time_posting.references import SOURCE_SYSTEM

ERP_REPORTS = ("erp", expense_reports.RECORD_TYPE)
PSA_EXPENSES = (SOURCE_SYSTEM, INBOX_ENTITY)


def expense_processors(
    *, erp: Connection | None
) -> list[tuple[tuple[str, str], Callable[..., Any]]]:
    """The ERP's expense reports first (what it holds already, by our key), then the PSA's
    expenses, which post to `erp`; without an ERP connection the expenses wait in the inbox."""
    processors: list[tuple[tuple[str, str], Callable[..., Any]]] = [
        (ERP_REPORTS, expense_reports_process)
    ]
    if erp is not None:
        processors.append((PSA_EXPENSES, partial(expenses_process, erp=erp)))
    return processors
