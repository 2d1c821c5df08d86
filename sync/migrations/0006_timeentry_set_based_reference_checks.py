"""A time entry's project, task and worker are checked once per statement on PostgreSQL.

A foreign key checks each inserted row on its own at commit: a lookup and a FOR KEY SHARE row
lock per reference, 3 per entry, ~12 µs of the time-posting path's ~65 µs of PostgreSQL time
an entry (docs/decisions.md #28). This migration replaces the three foreign keys of
`sync_timeentry` with triggers that give the same guarantee in bulk:

- after each INSERT or UPDATE statement on `sync_timeentry`, the distinct projects, tasks and
  workers its rows name are locked FOR KEY SHARE (as a foreign key locks them, so that a
  concurrent delete waits for this transaction) and any that does not exist fails the
  statement with SQLSTATE 23503 (foreign_key_violation, Django's IntegrityError);
- deleting a project, task or worker that time entries name, or changing its id, fails the
  same way at commit (deferred, as Django's foreign keys are).

Other databases keep the foreign keys: the model is unchanged (`db_constraint` stays True),
so SQLite still builds them. On PostgreSQL a later migration that changes the type of a
referenced primary key (or removes and re-adds one of these fields) would bring a key back
(correct, only slower; tests/sync/test_reference_checks.py says so). Migration 0007 closes the
gaps a review found (TRUNCATE, other isolation levels, re-inserted ids, unchanged references).
"""

from __future__ import annotations

from django.db import migrations

TABLE = "sync_timeentry"
REFERENCES = (("project_id", "sync_project"), ("task_id", "sync_task"),
              ("worker_id", "sync_worker"))


def _lock_and_check(column: str, table: str, named: str = "") -> str:
    """PL/pgSQL: lock the `table` rows that `named` (a query of ids) names; raise if one is gone."""
    named = named or f"SELECT DISTINCT {column} AS id FROM new_entries"
    return f"""
    WITH named AS ({named}),
         held AS MATERIALIZED (SELECT t.id FROM {table} t WHERE t.id IN (SELECT id FROM named)
                  FOR KEY SHARE OF t)
    SELECT min(named.id) INTO missing FROM named WHERE named.id NOT IN (SELECT id FROM held);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'time entry refers to {table}.id % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = '{TABLE}', COLUMN = '{column}';
    END IF;"""


# Named parts, so that migration 0007 can put them back when it is reversed.
UPDATE_TRIGGER = f"""
CREATE TRIGGER timeentry_references_update AFTER UPDATE ON {TABLE}
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION sync_timeentry_references_check();
"""

REFERENCED_FUNCTION = f"""
CREATE FUNCTION sync_timeentry_referenced_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM {TABLE} WHERE %I = $1)', TG_ARGV[0])
        INTO named USING OLD.id;
    IF named THEN
        RAISE EXCEPTION '%.id % is still named by time entries', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$$;
"""

FORWARD = f"""
CREATE FUNCTION sync_timeentry_references_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN{''.join(_lock_and_check(column, table) for column, table in REFERENCES)}
    RETURN NULL;
END
$$;

CREATE TRIGGER timeentry_references_insert AFTER INSERT ON {TABLE}
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION sync_timeentry_references_check();""" + UPDATE_TRIGGER \
    + REFERENCED_FUNCTION + "".join(f"""
CREATE CONSTRAINT TRIGGER timeentry_{column.removesuffix('_id')}_referenced
    AFTER DELETE OR UPDATE OF id ON {table} DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION sync_timeentry_referenced_check('{column}');
""" for column, table in REFERENCES)

BACKWARD = "".join(
    f"DROP TRIGGER timeentry_{column.removesuffix('_id')}_referenced ON {table};\n"
    for column, table in REFERENCES
) + f"""
DROP TRIGGER timeentry_references_insert ON {TABLE};
DROP TRIGGER timeentry_references_update ON {TABLE};
DROP FUNCTION sync_timeentry_references_check();
DROP FUNCTION sync_timeentry_referenced_check();
""" + "".join(
    f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_{column}_fk FOREIGN KEY ({column}) "
    f"REFERENCES {table} (id) DEFERRABLE INITIALLY DEFERRED;\n"
    for column, table in REFERENCES
)


def _foreign_keys(cursor) -> list[str]:
    cursor.execute(
        """
        SELECT c.conname FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND a.attname = ANY (%s)
        """,
        [TABLE, [column for column, _ in REFERENCES]],
    )
    return [name for (name,) in cursor.fetchall()]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in _foreign_keys(cursor):
            schema_editor.execute(
                f"ALTER TABLE {TABLE} DROP CONSTRAINT {schema_editor.quote_name(name)}"
            )
    schema_editor.execute(FORWARD, params=None)  # no placeholders: % is PL/pgSQL here


def backward(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0005_timeentry_psa_id"),
    ]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
