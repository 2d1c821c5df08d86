"""The NetSuite fields Ledgerbridge reads and writes: SuiteQL columns, numeric body fields."""

from __future__ import annotations

from sync.integrations.netsuite import time_bills
from sync.integrations.netsuite.client import DEFAULT_COLUMNS

# SuiteQL columns the cycle's NetSuite connector selects (NetSuiteConnector(columns=…)): what
# each master-data processor (sync/pipeline/master_data/erp_*.py) reads, and the time bills whose
# keys tell time posting which PSA time the ERP holds already.
ERP_COLUMNS: dict[str, tuple[str, ...]] = {
    "currency": ("id", "name", "symbol", "isinactive"),
    "subsidiary": ("id", "externalid", "name", "country", "currency", "isinactive"),
    "department": ("id", "externalid", "name", "subsidiary", "isinactive"),
    "accountingPeriod": (
        "id",
        "periodname",
        "startdate",
        "enddate",
        "closed",
        "subsidiary",
        "isquarter",
        "isyear",
        "isinactive",
    ),
    # The client's own selection of these is exactly what their processors read.
    "customer": DEFAULT_COLUMNS["customer"],
    "employee": DEFAULT_COLUMNS["employee"],
    "job": DEFAULT_COLUMNS["job"],
    "projectTask": (
        "id",
        "externalid",
        "title",
        "company",
        "parent",
        "status",
        "startdate",
        "enddate",
    ),
    # What the ERP holds already, by our key (target_records.py).
    time_bills.RECORD_TYPE: time_bills.COLUMNS,
}

# Body fields NetSuite wants as JSON numbers, by record type. The outbox keeps them as exact
# decimal strings (JSON has no decimal type); delivery turns them into Decimal for the wire.
NUMERIC_BODY_FIELDS: dict[str, frozenset[str]] = {time_bills.RECORD_TYPE: time_bills.NUMERIC_FIELDS}
