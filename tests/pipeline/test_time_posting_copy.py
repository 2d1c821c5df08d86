"""New time entries written by COPY (PostgreSQL) are, column for column, what the ORM writes.

The same approved entries are processed twice under two sets of PSA ids: once on the COPY path
and once with the ORM path forced. Every row either path writes (time entry, its history row,
the PSA external reference, its history row, the ERP delivery) must match, apart from primary
keys, the ids and keys that embed them, and the moments the rows were written.

Needs PostgreSQL (`scripts/test.py`, i.e. `make test`); on SQLite it fails, never skips.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

import sync.pipeline.time_posting.writers as time_posting
from sync.models import TimeEntry
from sync.pipeline.inbox import inbox_store
from sync.pipeline.models import Delivery, SyncRun
from sync.pipeline.time_posting.flow import time_entries_process
from sync.pipeline.time_posting.writers import OPERATION
from tests import factories as f
from tests.pipeline import test_time_posting as posting
from tests.pipeline.test_time_posting import entry, ref

firm = posting.firm  # the fixture: a firm with one project, task, worker and open October

pytestmark = [pytest.mark.integration, pytest.mark.django_db]

NOW = dt.datetime(2026, 10, 20, 8, 0, 5, 250000, tzinfo=dt.UTC)
COPY_IDS, ORM_IDS = "copyset-", "ormset-"
# Moments a row was written, and the surrogate keys: the only columns allowed to differ.
WRITTEN_AT = {"id", "created_at", "updated_at", "history_id", "history_date"}


@pytest.fixture
def second_project(firm):
    """A project with its own deal correlation id, and a worker, task and cost centre the
    ERP knows by internal id (the first project is known to the ERP by external id only)."""
    first = firm["project"]
    entity = first.legal_entity
    project = f.ProjectFactory(
        customer=first.customer,
        legal_entity=entity,
        currency=first.currency,
        code="P-200",
        correlation_id="deal-7",
    )
    task = f.TaskFactory(project=project, code="T-2")
    centre = f.CostCentreFactory(legal_entity=entity)
    worker = f.WorkerFactory(legal_entity=entity, cost_centre=centre)
    ref("psa", project, "ws-2")
    ref("psa", task, "st-2")
    ref("psa", worker, "u-2")
    ref("erp", project, "cust-55")
    ref("erp", task, "case-9")
    ref("erp", centre, "dept-4")
    return project


def payloads(prefix: str) -> list[tuple[str, dict]]:
    """The approved entries of one run, the PSA ids starting with `prefix`."""
    variants = [
        ("0001", {}),
        ("0002", {"time_in_minutes": 485, "billable": False, "rate_in_cents": 9999}),
        ("0003", {"date_performed": "2026-10-01", "time_in_minutes": 1, "rate_in_cents": 1}),
        (
            "0004",
            {
                "workspace_id": "ws-2",
                "story_id": "st-2",
                "user_id": "u-2",
                "time_in_minutes": 1440,
                "currency": "gbp",
            },
        ),
        # An id that COPY's text format must escape, all the way to the ERP key and memo.
        ("0005\t\\N{0}\\ é", {"workspace_id": "ws-2", "story_id": "st-2"}),
    ]
    records = []
    for n, (suffix, change) in enumerate(variants, start=1):
        _, payload = entry(n, **change)
        payload["id"] = f"{prefix}{suffix}"
        records.append((payload["id"], payload))
    return records


def run_batch(firm, prefix: str) -> tuple[SyncRun, Any]:
    """Store one set of entries (the n-th entry of every set shares its correlation id) and
    process them as one batch at NOW."""
    inbox_ids = []
    for n, record in enumerate(payloads(prefix)):
        stored = inbox_store(
            system="psa", entity="time_entries", records=[record], correlation_id=f"corr-{n}"
        )
        inbox_ids += [item.id for item in stored.new]
    run = SyncRun.objects.create(kind="process", started_at=NOW)
    counts = time_entries_process(inbox_ids=inbox_ids, run=run, erp=firm["erp"], now=NOW)
    return run, counts


def renamed(value: Any, prefix: str) -> Any:
    """`value` with the set's PSA id prefix replaced, in every string it holds."""
    return json.loads(json.dumps(value, default=str).replace(json.dumps(prefix)[1:-1], "<psa>"))


def written(prefix: str, run: SyncRun) -> dict[str, list[dict]]:
    """Every row written for one set's entries, with keys and write moments taken out."""
    entry_type = ContentType.objects.get_for_model(TimeEntry)
    # entry pk -> the entry's PSA id without the set's prefix: the key both sets share.
    psa = {
        pk: ext.removeprefix(prefix)
        for pk, ext in TimeEntry.objects.filter(psa_id__startswith=prefix).values_list(
            "pk", "psa_id"
        )
    }

    def strip(row: dict, *, record_pk: str) -> dict:
        row = {k: v for k, v in row.items() if k not in WRITTEN_AT}
        if "history_actor" in row:
            assert row["history_actor"] == run.actor
            row["history_actor"] = "<run>"
        row["psa"] = psa[int(record_pk)]
        return renamed(row, prefix)

    def sort(rows: list[dict]) -> list[dict]:
        return sorted(rows, key=lambda r: r["psa"])

    entries = sort(
        [strip(r, record_pk=r["id"]) for r in TimeEntry.objects.filter(pk__in=psa).values()]
    )
    entry_history = sort(
        [strip(r, record_pk=r["id"]) for r in TimeEntry.history.filter(id__in=psa).values()]
    )
    deliveries = []
    for r in Delivery.objects.filter(
        content_type=entry_type, object_id__in=[str(pk) for pk in psa]
    ).values():
        key = f"erp:{OPERATION}:{r['object_id']}:v{r['record_version']}"
        assert r["idempotency_key"] == key
        deliveries.append(
            strip({**r, "object_id": "<pk>", "idempotency_key": "<key>"}, record_pk=r["object_id"])
        )
    return {"entries": entries, "entry_history": entry_history, "deliveries": sort(deliveries)}


def test_copy_writes_column_for_column_what_the_orm_writes(firm, second_project, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.fail(
            "The COPY path runs on PostgreSQL only: run through `scripts/test.py`.", pytrace=False
        )
    taken: list[str] = []
    for name in ("_create_by_copy", "_create_by_orm"):
        real = getattr(time_posting, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            taken.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(time_posting, name, spy)

    copy_run, copy_counts = run_batch(firm, COPY_IDS)
    monkeypatch.setattr(time_posting, "copy_supported", lambda model: False)
    orm_run, orm_counts = run_batch(firm, ORM_IDS)

    assert taken == ["_create_by_copy", "_create_by_orm"]
    assert (copy_counts.created, copy_counts.deliveries, copy_counts.failures) == (5, 5, [])
    assert (orm_counts.created, orm_counts.deliveries, orm_counts.failures) == (5, 5, [])
    by_copy = written(COPY_IDS, copy_run)
    by_orm = written(ORM_IDS, orm_run)
    # One row per entry in every table: nothing is compared vacuously.
    assert {table: len(rows) for table, rows in by_copy.items()} == dict.fromkeys(by_copy, 5)
    assert {table: len(rows) for table, rows in by_orm.items()} == dict.fromkeys(by_orm, 5)
    # Every differing cell at once: (table, PSA id, column, by COPY, by the ORM).
    differences = [
        (table, copied["psa"], column, copied.get(column), created.get(column))
        for table in by_copy
        for copied, created in zip(by_copy[table], by_orm[table], strict=True)
        for column in sorted(copied.keys() | created.keys())
        if copied.get(column, "<absent>") != created.get(column, "<absent>")
    ]
    assert differences == [], "\n".join(map(repr, differences))


def test_the_copy_path_writes_the_awkward_psa_id_exactly(firm, second_project):
    if connection.vendor != "postgresql":
        pytest.fail(
            "The COPY path runs on PostgreSQL only: run through `scripts/test.py`.", pytrace=False
        )
    run, _ = run_batch(firm, COPY_IDS)
    psa_id = f"{COPY_IDS}0005\t\\N{{0}}\\ é"
    entry_pk = TimeEntry.objects.get(psa_id=psa_id).pk
    delivery = Delivery.objects.get(object_id=str(entry_pk))
    assert delivery.external_id == f"KT-TE-{psa_id}"
    assert delivery.payload["body"]["memo"] == f"PSA time entry {psa_id}"
    assert delivery.idempotency_key == f"erp:{OPERATION}:{entry_pk}:v1"
    te = TimeEntry.objects.get(pk=entry_pk)
    assert (te.correlation_id, te.status, te.version, te.approved_at) == (
        "deal-7",
        "approved",
        1,
        NOW,
    )
    assert te.history.get().history_actor == run.actor
