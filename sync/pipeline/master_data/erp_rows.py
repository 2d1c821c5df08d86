"""The ERP's master-data rows: NetSuite SuiteQL rows as the erp_* processors read them.

Payloads are the rows `NetSuiteConnector.pull(entity=…)` yields: lower-case column names,
every value a string (booleans "T"/"F", dates "M/D/YYYY"), empty values left out. Pull with
`columns=ERP_COLUMNS` (sync/integrations/netsuite/columns.py) so each row carries what the
processors read. Every record is matched by its ExternalRef(erp, internal `id`) first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sync.models import LegalEntity
from sync.models.reference import ReferenceStatus
from sync.pipeline.master_data.engine import Reader, refs_load

SYSTEM = "erp"


def active_status(inactive: bool) -> str:
    return ReferenceStatus.INACTIVE if inactive else ReferenceStatus.ACTIVE


@dataclass(frozen=True)
class Row:
    """One SuiteQL row: its internal id and the fields read from it."""

    external_id: str
    fields: dict[str, Any]


def row_read(payload: Any, what: str, read) -> Row:
    """The row of `payload`, its fields read by `read(reader)`; raises PayloadError."""
    reader = Reader(payload, what=f"NetSuite {what}")
    external_id = reader.text("id")
    fields = read(reader)
    reader.done()
    return Row(external_id=external_id, fields=fields)


def subsidiaries_load(records: list, name: str = "subsidiary") -> dict[str, int]:
    """Legal entity ids by the ERP subsidiary id each record's `name` field holds."""
    return refs_load(SYSTEM, LegalEntity, [p.fields[name] for _, p in records])
