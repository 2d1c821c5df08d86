"""The engine bench's firm and inbox (bench/sync_throughput.py): master data built with bulk
inserts, and approved Kantata time entries COPY'd into the inbox (neither is measured)."""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid

WORK_MONTH = dt.date(2026, 10, 1)
PROJECTS = 200
TASKS_PER_PROJECT = 5
WORKERS = 1_000


def firm_build() -> dict:
    """A firm built with bulk inserts: one legal entity, projects, tasks, workers, refs, periods,
    a published legal-entity mapping and the ERP connection. Idempotent (reuses an existing one).
    """
    from django.contrib.auth import get_user_model
    from django.contrib.contenttypes.models import ContentType

    from sync import models as m
    from sync.mappings.models import MappingSet
    from sync.mappings.services import (
        mapping_entry_set,
        mapping_set_create,
        mapping_version_create_draft,
        mapping_version_publish,
        mapping_version_submit,
    )
    from sync.pipeline.models import Connection

    erp = Connection.objects.filter(name="bench-erp").first()
    if erp is not None:
        return {"erp_id": erp.id}
    gbp, _ = m.Currency.objects.get_or_create(code="GBP", defaults={"name": "Pound sterling"})
    uk = m.LegalEntity.objects.create(
        code="UK01", name="Bench UK", country="GB", functional_currency=gbp
    )
    customer = m.Customer.objects.create(
        name="Bench Customer Ltd", legal_entity=uk, status="approved"
    )
    centres = m.CostCentre.objects.bulk_create(
        [m.CostCentre(code=f"CC{i:03d}", name=f"Centre {i}", legal_entity=uk) for i in range(20)]
    )
    projects = m.Project.objects.bulk_create(
        [
            m.Project(
                code=f"P-{i:05d}",
                name=f"Project {i}",
                customer=customer,
                legal_entity=uk,
                currency=gbp,
                status="open",
                correlation_id=f"corr-p{i}",
            )
            for i in range(PROJECTS)
        ]
    )
    tasks = m.Task.objects.bulk_create(
        [
            m.Task(project=p, code=f"{p.code}.{t}", name=f"Task {t}")
            for p in projects
            for t in range(TASKS_PER_PROJECT)
        ]
    )
    workers = m.Worker.objects.bulk_create(
        [
            m.Worker(
                employee_number=f"E{i:06d}",
                name=f"Worker {i}",
                legal_entity=uk,
                cost_centre=centres[i % len(centres)],
                cost_rate="85.5000",
                cost_rate_currency=gbp,
            )
            for i in range(WORKERS)
        ]
    )
    for month in range(1, 13):
        start = dt.date(2026, month, 1)
        end = dt.date(2026 + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
        m.AccountingPeriod.objects.create(
            legal_entity=uk, start_date=start, end_date=end, status="open"
        )
    ct = ContentType.objects.get_for_models(m.Project, m.Task, m.Worker)
    refs = [
        m.ExternalRef(
            system="psa", content_type=ct[m.Project], object_id=str(p.pk), external_id=f"ws-{i}"
        )
        for i, p in enumerate(projects)
    ]
    refs += [
        m.ExternalRef(
            system="psa", content_type=ct[m.Task], object_id=str(t.pk), external_id=f"st-{i}"
        )
        for i, t in enumerate(tasks)
    ]
    refs += [
        m.ExternalRef(
            system="psa", content_type=ct[m.Worker], object_id=str(w.pk), external_id=f"u-{i}"
        )
        for i, w in enumerate(workers)
    ]
    # Half the workers and every project are known to the ERP by internal id.
    refs += [
        m.ExternalRef(
            system="erp", content_type=ct[m.Worker], object_id=str(w.pk), external_id=str(1000 + i)
        )
        for i, w in enumerate(workers)
        if i % 2
    ]
    refs += [
        m.ExternalRef(
            system="erp", content_type=ct[m.Project], object_id=str(p.pk), external_id=str(5000 + i)
        )
        for i, p in enumerate(projects)
    ]
    m.ExternalRef.objects.bulk_create(refs, batch_size=5000)
    user = get_user_model().objects.create_user("bench-mapper")
    mapping_set = MappingSet.objects.filter(slug="legal-entity").first() or mapping_set_create(
        slug="legal-entity",
        name="Legal entity → ERP subsidiary",
        kind="legal_entity",
        user=user,
    )
    draft = mapping_version_create_draft(mapping_set=mapping_set, user=user)
    mapping_entry_set(version=draft, source_value="UK01", target_value="3", user=user)
    mapping_version_submit(version=draft, user=user)
    mapping_version_publish(version=draft, effective_from=dt.date(2026, 1, 1), user=None)
    erp = Connection.objects.create(
        name="bench-erp",
        system="erp",
        dialect="netsuite",
        base_url="http://127.0.0.1:9/netsuite",
        max_concurrency=10,
    )
    return {"erp_id": erp.id}


def time_payload(prefix: str, i: int, rng: random.Random) -> dict:
    """One approved Kantata time entry of the bench firm (external id `<prefix>-<i>`)."""
    project = rng.randrange(PROJECTS)
    return {
        "id": f"{prefix}-{i}",
        "workspace_id": f"ws-{project}",
        "story_id": f"st-{project * TASKS_PER_PROJECT + rng.randrange(TASKS_PER_PROJECT)}",
        "user_id": f"u-{rng.randrange(WORKERS)}",
        "date_performed": (WORK_MONTH + dt.timedelta(days=rng.randrange(31))).isoformat(),
        "time_in_minutes": 15 * rng.randint(1, 40),
        "billable": rng.random() < 0.8,
        "approved": True,
        "rate_in_cents": 100 * rng.choice([95, 120, 150, 180, 250]),
        "currency": "GBP",
    }


def inbox_fill(prefix: str, n: int, *, seed: int = 1) -> float:
    """COPY n pending PSA time-entry inbox rows (what a pull would have stored). Returns seconds."""
    import orjson
    from django.db import connection

    from sync.pipeline.inbox import payload_hash

    rng = random.Random(f"{prefix}:{seed}")
    now = dt.datetime.now(dt.UTC)
    batch = str(uuid.uuid4())
    started = time.perf_counter()
    columns = (
        "system",
        "entity",
        "external_id",
        "payload",
        "payload_hash",
        "batch_id",
        "received_at",
        "correlation_id",
        "status",
        "mapping_versions",
    )
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY pipeline_inboxitem ({', '.join(columns)}) FROM STDIN") as copy,
    ):
        for i in range(n):
            payload = time_payload(prefix, i, rng)
            copy.write_row(
                (
                    "psa",
                    "time_entry",
                    payload["id"],
                    orjson.dumps(payload).decode(),
                    payload_hash(payload),
                    batch,
                    now,
                    uuid.uuid4().hex,
                    "pending",
                    "{}",
                )
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE pipeline_inboxitem")
    return time.perf_counter() - started
