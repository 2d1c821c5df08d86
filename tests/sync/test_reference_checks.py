"""A time entry's project, task and worker must exist, on PostgreSQL checked once per statement
(sync/sql/timeentry_references.sql, run by migration sync 0001; docs/decisions.md #28) instead
of by three per-row foreign keys.

The guarantee is the foreign keys': an entry cannot name a missing record, a named record
cannot be deleted (or its id changed), and neither can happen by racing the other.
These tests need PostgreSQL (`make test`); SQLite (the local default) has no such check.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from sync.audit import audited_copy_create
from sync.models import Project, Task, TimeEntry, Worker
from tests import factories as f

pytestmark = pytest.mark.integration

MISSING = 987_654_321


def _entry_columns(entry: TimeEntry, **override) -> dict:
    values = {
        "worker_id": entry.worker_id,
        "project_id": entry.project_id,
        "task_id": entry.task_id,
    }
    return {**values, **override}


def _execute_atomically(statements: list[str], params: list) -> None:
    """Run the statements in one savepoint; the last one takes `params`."""
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements[:-1]:
            cursor.execute(statement)
        cursor.execute(statements[-1], params)


@pytest.mark.django_db
def test_the_time_entry_table_has_no_per_row_foreign_keys_but_the_statement_checks():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'sync_timeentry'::regclass "
            "AND contype = 'f' AND conkey && (SELECT array_agg(attnum) FROM pg_attribute "
            "WHERE attrelid = 'sync_timeentry'::regclass "
            "AND attname IN ('project_id', 'task_id', 'worker_id'))"
        )
        assert cursor.fetchone()[0] == 0, "a migration brought a per-row foreign key back"
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE "
            "'timeentry_%' ORDER BY 1"
        )
        assert [name for (name,) in cursor.fetchall()] == [
            "timeentry_project_referenced",
            "timeentry_project_truncated",
            "timeentry_references_insert",
            "timeentry_references_update",
            "timeentry_task_referenced",
            "timeentry_task_truncated",
            "timeentry_worker_referenced",
            "timeentry_worker_truncated",
        ]


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["project_id", "task_id", "worker_id"])
def test_an_entry_naming_a_missing_record_is_refused(field):
    template = f.TimeEntryFactory()
    refused = f"{field.removesuffix('_id')}.id {MISSING} that does not exist"
    with pytest.raises(IntegrityError, match=refused), transaction.atomic():
        TimeEntry.objects.create(
            psa_id="ghost",
            work_date=template.work_date,
            hours=template.hours,
            bill_rate=template.bill_rate,
            currency_id=template.currency_id,
            **_entry_columns(template, **{field: MISSING}),
        )
    assert not TimeEntry.objects.filter(psa_id="ghost").exists()


@pytest.mark.django_db
def test_one_bad_row_fails_the_whole_bulk_copy_and_nothing_is_written():
    template = f.TimeEntryFactory()
    good = (template.worker_id, template.project_id, template.task_id)
    rows = [
        (
            f"bulk-{i}",
            *good,
            template.work_date,
            template.hours,
            True,
            template.bill_rate,
            template.currency_id,
        )
        for i in range(50)
    ]
    rows[37] = (
        "bulk-37",
        template.worker_id,
        template.project_id,
        MISSING,
        template.work_date,
        template.hours,
        True,
        template.bill_rate,
        template.currency_id,
    )
    columns = (
        "psa_id",
        "worker_id",
        "project_id",
        "task_id",
        "work_date",
        "hours",
        "billable",
        "bill_rate",
        "currency_id",
    )
    with pytest.raises(IntegrityError, match=f"sync_task.id {MISSING}"), transaction.atomic():
        audited_copy_create(
            model=TimeEntry,
            columns=columns,
            rows=rows,
            actor="run:test",
            constants={"status": "approved"},
        )
    assert TimeEntry.objects.count() == 1
    assert TimeEntry.history.filter(psa_id__startswith="bulk-").count() == 0


@pytest.mark.django_db
def test_an_entry_moved_to_a_missing_task_is_refused_and_a_real_move_is_not():
    entry = f.TimeEntryFactory()
    other = f.TaskFactory(project=entry.project)
    with pytest.raises(IntegrityError), transaction.atomic():
        TimeEntry.objects.filter(pk=entry.pk).update(task_id=MISSING)
    TimeEntry.objects.filter(pk=entry.pk).update(task_id=other.pk)
    entry.refresh_from_db()
    assert entry.task_id == other.pk


@pytest.mark.django_db
@pytest.mark.parametrize("model", [Project, Task, Worker])
def test_a_named_record_cannot_be_deleted_or_renumbered_behind_djangos_back(model):
    entry = f.TimeEntryFactory()
    target = {Project: entry.project_id, Task: entry.task_id, Worker: entry.worker_id}[model]
    table = model._meta.db_table
    # Only these checks at once: the project's own foreign keys (its tasks') stay deferred.
    immediate = (
        "SET CONSTRAINTS timeentry_project_referenced, timeentry_task_referenced, "
        "timeentry_worker_referenced IMMEDIATE"
    )
    for statement in (
        f"DELETE FROM {table} WHERE id = %s",  # noqa: S608 - model's table
        f"UPDATE {table} SET id = id + 1000000 WHERE id = %s",  # noqa: S608
    ):
        with pytest.raises(IntegrityError, match="still named by time entries"):
            _execute_atomically([immediate, statement], [target])
    assert model.objects.filter(pk=target).exists()


@pytest.mark.django_db
def test_a_record_no_entry_names_can_still_be_deleted():
    worker = f.WorkerFactory()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("DELETE FROM sync_worker WHERE id = %s", [worker.pk])
    assert not Worker.objects.filter(pk=worker.pk).exists()


@pytest.mark.django_db(transaction=True)  # TRUNCATE refuses to run with deferred checks pending
@pytest.mark.parametrize("model", [Project, Task, Worker])
def test_a_named_record_cannot_be_truncated_away_but_goes_with_the_entries(model):
    entry = f.TimeEntryFactory()
    table = model._meta.db_table
    with _connect() as truncator:
        with pytest.raises(
            psycopg.errors.ForeignKeyViolation,
            match=f"{table} cannot be truncated while time entries",
        ):
            truncator.execute(f"TRUNCATE {table} CASCADE")
        truncator.rollback()
        truncator.execute(f"TRUNCATE {table}, sync_timeentry CASCADE")
        emptied = truncator.execute(
            f"SELECT (SELECT count(*) FROM {table}) + "  # noqa: S608
            "(SELECT count(*) FROM sync_timeentry)"
        ).fetchone()[0]
        truncator.rollback()
        # Outside READ COMMITTED its snapshot could miss entries: refused (decision 28).
        truncator.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(
            psycopg.errors.ObjectNotInPrerequisiteState, match="needs READ COMMITTED"
        ):
            truncator.execute(f"TRUNCATE {table}, sync_timeentry CASCADE")
        truncator.rollback()
    assert emptied == 0
    assert TimeEntry.objects.filter(pk=entry.pk).exists()


@pytest.mark.django_db
def test_a_record_deleted_and_put_back_under_its_id_keeps_its_entries():
    entry = f.TimeEntryFactory()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE kept ON COMMIT DROP AS SELECT * FROM sync_worker WHERE id = %s",
            [entry.worker_id],
        )
        cursor.execute("DELETE FROM sync_worker WHERE id = %s", [entry.worker_id])
        cursor.execute("INSERT INTO sync_worker SELECT * FROM kept")
        cursor.execute("SET CONSTRAINTS timeentry_worker_referenced IMMEDIATE")  # checks now
    assert TimeEntry.objects.get(pk=entry.pk).worker.pk == entry.worker_id


def _connect(*, autocommit: bool = False) -> psycopg.Connection:
    params = connection.get_connection_params()
    return psycopg.connect(
        host=params.get("host"),
        port=params.get("port"),
        user=params.get("user"),
        dbname=params.get("dbname"),
        password=params.get("password"),
        autocommit=autocommit,
    )


_INSERT = (  # a copy of entry %(template)s, as another PSA entry booked by worker %(worker)s
    "INSERT INTO sync_timeentry (created_at, updated_at, version, correlation_id, "
    "mapping_versions, psa_id, worker_id, project_id, task_id, work_date, hours, billable, "
    "bill_rate, currency_id, status) SELECT now(), now(), 1, '', '{}', %(psa_id)s, "
    "%(worker)s, project_id, task_id, work_date, hours, billable, bill_rate, currency_id, "
    "status FROM sync_timeentry WHERE id = %(template)s"
)


def _race(
    first: psycopg.Connection, second: psycopg.Connection, statement: str, params: object
) -> BaseException | None:
    """Run `statement` on `second` in a thread while `first` holds its open transaction; once
    the statement waits for a lock (seen in pg_stat_activity: no sleeping on a guess), commit
    `first`. Returns what the statement raised, or None if it went through."""
    outcome: dict[str, BaseException | None] = {"error": None}

    def run() -> None:
        try:
            with second.transaction():
                second.execute(statement, params)
        except Exception as exc:  # handed to the test to judge
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    with _connect(autocommit=True) as watcher:
        deadline = time.monotonic() + 30
        while watcher.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [second.info.backend_pid]
        ).fetchone() != ("Lock",):
            assert thread.is_alive(), f"it did not wait for the other transaction: {outcome}"
            assert time.monotonic() < deadline, "it never started to wait"
            time.sleep(0.01)
    first.commit()
    thread.join(timeout=30)
    assert not thread.is_alive(), "it still waits after the other transaction committed"
    return outcome["error"]


@pytest.mark.django_db(transaction=True)
def test_a_delete_racing_a_new_entry_waits_for_it_and_then_fails():
    """The entry's statement holds its worker FOR KEY SHARE: the delete waits, then finds it."""
    template = f.TimeEntryFactory()
    spare = f.WorkerFactory()  # named by no entry yet
    with _connect() as writer, _connect() as deleter:
        writer.execute(_INSERT, {"psa_id": "racer", "worker": spare.pk, "template": template.pk})
        error = _race(writer, deleter, "DELETE FROM sync_worker WHERE id = %s", [spare.pk])
    assert isinstance(error, psycopg.errors.ForeignKeyViolation), error
    assert "still named by time entries" in str(error)
    assert Worker.objects.filter(pk=spare.pk).exists()
    assert TimeEntry.objects.filter(psa_id="racer", worker=spare).exists()


@pytest.mark.django_db(transaction=True)
def test_a_new_entry_racing_a_delete_waits_for_it_and_then_fails():
    """The other way round: the delete commits first, so the entry finds its worker gone."""
    template = f.TimeEntryFactory()
    spare = f.WorkerFactory()
    with _connect() as deleter, _connect() as writer:
        deleter.execute("DELETE FROM sync_worker WHERE id = %s", [spare.pk])  # not committed
        error = _race(
            deleter,
            writer,
            _INSERT,
            {"psa_id": "late", "worker": spare.pk, "template": template.pk},
        )
    assert isinstance(error, psycopg.errors.ForeignKeyViolation), error
    assert "that does not exist" in str(error)
    assert not Worker.objects.filter(pk=spare.pk).exists()
    assert not TimeEntry.objects.filter(psa_id="late").exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_named_record_fails_at_commit_as_a_deferred_foreign_key_does():
    entry = f.TimeEntryFactory()
    with _connect() as deleter:
        deleter.execute("DELETE FROM sync_worker WHERE id = %s", [entry.worker_id])  # accepted
        with pytest.raises(psycopg.errors.ForeignKeyViolation, match="still named"):
            deleter.commit()
    assert Worker.objects.filter(pk=entry.worker_id).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_snapshot_deleter_cannot_miss_an_entry_committed_after_its_snapshot(level):
    """Its check sees only its snapshot, so it refuses unless READ COMMITTED (decision 28)."""
    template = f.TimeEntryFactory()
    spare = f.WorkerFactory()
    with _connect() as deleter, _connect() as writer:
        deleter.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
        deleter.execute("SELECT count(*) FROM sync_timeentry")  # the snapshot is taken here
        writer.execute(_INSERT, {"psa_id": "after", "worker": spare.pk, "template": template.pk})
        writer.commit()
        deleter.execute("DELETE FROM sync_worker WHERE id = %s", [spare.pk])
        with pytest.raises(
            psycopg.errors.ObjectNotInPrerequisiteState, match="needs READ COMMITTED"
        ):
            deleter.commit()
    assert Worker.objects.filter(pk=spare.pk).exists()
    assert TimeEntry.objects.get(psa_id="after").worker_id == spare.pk


@pytest.mark.django_db(transaction=True)
def test_an_update_waits_on_a_held_worker_only_when_it_names_a_new_one():
    """As with a foreign key: a status change, or two entries swapping their workers, names no
    worker the statement's rows did not name before, so it locks none; a move to a third does."""
    entry = f.TimeEntryFactory()
    second = f.TimeEntryFactory()
    third = f.WorkerFactory()
    workers = (entry.worker_id, second.worker_id, third.pk)
    with _connect() as holder, _connect() as writer:
        holder.execute("SELECT 1 FROM sync_worker WHERE id = ANY (%s) FOR UPDATE", [list(workers)])
        writer.execute("SET lock_timeout = '2s'")
        writer.execute(
            "UPDATE sync_timeentry SET hours = hours + 1, status = 'invoiced' WHERE id = %s",
            [entry.pk],
        )
        writer.execute(
            "UPDATE sync_timeentry SET worker_id = CASE id WHEN %s THEN %s ELSE %s "
            "END WHERE id IN (%s, %s)",
            [entry.pk, second.worker_id, entry.worker_id, entry.pk, second.pk],
        )
        writer.commit()
        with pytest.raises(psycopg.errors.LockNotAvailable):
            writer.execute(
                "UPDATE sync_timeentry SET worker_id = %s WHERE id = %s", [third.pk, entry.pk]
            )
        writer.rollback()
        holder.rollback()
    entry_now = TimeEntry.objects.get(pk=entry.pk)
    assert (entry_now.hours, entry_now.status, entry_now.worker_id) == (
        entry.hours + 1,
        "invoiced",
        second.worker_id,
    )
    assert TimeEntry.objects.get(pk=second.pk).worker_id == entry.worker_id


@pytest.mark.django_db
def test_the_migration_takes_the_checks_out_when_unapplied_and_puts_them_back():
    from sync.sql import postgresql_script

    operation = postgresql_script(
        "timeentry_references.sql", reverse="timeentry_references_undo.sql"
    )

    def triggers() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE "
                "'timeentry_%' ORDER BY 1"
            )
            return [name for (name,) in cursor.fetchall()]

    entry = f.TimeEntryFactory()
    checks = triggers()
    assert len(checks) == 8
    with connection.schema_editor() as editor:
        operation.reverse_code(None, editor)
    assert triggers() == []
    with connection.schema_editor() as editor:
        operation.code(None, editor)
    assert triggers() == checks
    with pytest.raises(IntegrityError), transaction.atomic():
        TimeEntry.objects.filter(pk=entry.pk).update(task_id=MISSING)
