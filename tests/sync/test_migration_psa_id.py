"""Migration sync 0005: a time entry's PSA ExternalRef becomes its `psa_id` column, and back.

The rows are made with the historical models of the state the database is migrated to (the
factories build today's models), and the database is always migrated back to the latest state
so the tests after these see the full schema.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("sync", "0004_lean_posting_writes")]
AFTER = [("sync", "0005_timeentry_psa_id")]


@pytest.fixture
def executor(transactional_db) -> Iterator[MigrationExecutor]:
    """A migration executor on the default database, which is left fully migrated afterwards."""
    executor = MigrationExecutor(connection)
    try:
        yield executor
    finally:
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def _migrate(executor: MigrationExecutor, targets):
    """Migrate to `targets` and return the historical apps of that state."""
    executor.loader.build_graph()
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def _time_entry(apps, **extra):
    """A time entry and the project it is booked to, with the least reference data they need."""
    currency = apps.get_model("sync", "Currency").objects.create(code="EUR", name="Euro")
    entity = apps.get_model("sync", "LegalEntity").objects.create(
        code="LB-DE", name="Ledgerbridge GmbH", country="DE", functional_currency=currency
    )
    customer = apps.get_model("sync", "Customer").objects.create(name="Acme", legal_entity=entity)
    project = apps.get_model("sync", "Project").objects.create(
        code="P-1", name="Rollout", customer=customer, legal_entity=entity, currency=currency
    )
    task = apps.get_model("sync", "Task").objects.create(project=project, code="T-1", name="Build")
    worker = apps.get_model("sync", "Worker").objects.create(
        employee_number="E-1", name="Ada", legal_entity=entity
    )
    entry = apps.get_model("sync", "TimeEntry").objects.create(
        worker=worker,
        project=project,
        task=task,
        currency=currency,
        work_date=dt.date(2026, 1, 5),
        hours=Decimal("7.50"),
        bill_rate=Decimal("120.00"),
        **extra,
    )
    return entry, project


def _content_type(apps, model: str):
    return apps.get_model("contenttypes", "ContentType").objects.get_or_create(
        app_label="sync", model=model
    )[0]


def test_forward_moves_the_entrys_psa_ref_into_psa_id_and_leaves_other_refs(executor):
    apps = _migrate(executor, BEFORE)
    entry, project = _time_entry(apps)
    entry_type, project_type = _content_type(apps, "timeentry"), _content_type(apps, "project")
    ExternalRef = apps.get_model("sync", "ExternalRef")
    psa_ref = ExternalRef.objects.create(
        system="psa", content_type=entry_type, object_id=str(entry.pk), external_id="KT-9001"
    )
    erp_ref = ExternalRef.objects.create(
        system="erp", content_type=entry_type, object_id=str(entry.pk), external_id="NS-77"
    )
    project_ref = ExternalRef.objects.create(
        system="psa", content_type=project_type, object_id=str(project.pk), external_id="KP-12"
    )
    # The entry's existing history row (the historical models write none by themselves).
    apps.get_model("sync", "HistoricalTimeEntry").objects.create(
        id=entry.pk,
        worker_id=entry.worker_id,
        project_id=entry.project_id,
        task_id=entry.task_id,
        currency_id=entry.currency_id,
        work_date=entry.work_date,
        hours=entry.hours,
        bill_rate=entry.bill_rate,
        created_at=entry.created_at,
        updated_at=entry.updated_at,
        history_date=entry.created_at,
        history_type="+",
        history_actor="run:1",
    )

    apps = _migrate(executor, AFTER)

    assert apps.get_model("sync", "TimeEntry").objects.get(pk=entry.pk).psa_id == "KT-9001"
    ExternalRef = apps.get_model("sync", "ExternalRef")
    assert not ExternalRef.objects.filter(pk=psa_ref.pk).exists()
    columns = ("pk", "system", "content_type_id", "object_id", "external_id")
    assert set(ExternalRef.objects.values_list(*columns)) == {
        (erp_ref.pk, "erp", entry_type.pk, str(entry.pk), "NS-77"),
        (project_ref.pk, "psa", project_type.pk, str(project.pk), "KP-12"),
    }
    # The entry's history says which PSA record it came from, and the ref's deletion is audited.
    history = apps.get_model("sync", "HistoricalTimeEntry").objects.get(id=entry.pk)
    assert history.psa_id == "KT-9001"
    gone = apps.get_model("sync", "HistoricalExternalRef").objects.get(id=psa_ref.pk)
    assert (gone.history_type, gone.history_actor, gone.external_id) == (
        "-",
        "system:migration-sync-0005",
        "KT-9001",
    )


def test_backward_makes_a_psa_ref_of_each_entrys_psa_id(executor):
    apps = _migrate(executor, AFTER)
    entry, _ = _time_entry(apps, psa_id="KT-9001")
    # A second entry without a PSA id gets no ref.
    apps.get_model("sync", "TimeEntry").objects.create(
        worker_id=entry.worker_id,
        project_id=entry.project_id,
        task_id=entry.task_id,
        currency_id=entry.currency_id,
        work_date=dt.date(2026, 1, 6),
        hours=Decimal("1.00"),
        bill_rate=Decimal("120.00"),
    )
    entry_type = _content_type(apps, "timeentry")

    apps = _migrate(executor, BEFORE)

    refs = apps.get_model("sync", "ExternalRef").objects
    assert set(refs.values_list("system", "content_type_id", "object_id", "external_id")) == {
        ("psa", entry_type.pk, str(entry.pk), "KT-9001"),
    }
    created = apps.get_model("sync", "HistoricalExternalRef").objects.get()
    assert (created.id, created.history_type, created.external_id) == (
        refs.get().pk,
        "+",
        "KT-9001",
    )
