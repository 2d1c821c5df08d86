"""The time entry's reference triggers (migration 0006) close the gaps a foreign key does not have.

Found by review of 0006 and closed here, each tested in tests/sync/test_reference_checks.py:

- **TRUNCATE** of `sync_project`, `sync_task` or `sync_worker` fires no row trigger; an
  AFTER TRUNCATE trigger on each now fails the statement while any time entry is left (truncate
  `sync_timeentry` in the same statement, as a foreign key would demand).
- **REPEATABLE READ and SERIALIZABLE.** A deleter's deferred check reads its transaction's
  snapshot, so it cannot see an entry that another transaction committed after that snapshot
  (a foreign key re-checks with a fresh one; PL/pgSQL cannot). Deleting or renumbering a
  project, task or worker that no visible entry names is therefore refused (SQLSTATE 55000)
  unless the transaction runs at READ COMMITTED, Django's default and the only level this
  product uses (READ UNCOMMITTED is READ COMMITTED in PostgreSQL). TRUNCATE of these tables is
  refused the same way, even with `sync_timeentry` in the statement (a lock on the entries
  would not prove that they were emptied). Inserting and updating entries is safe at every
  level: the FOR KEY SHARE lock fails with a serialization error when the record was deleted
  after the snapshot.
- **Deleted and put back.** A record deleted (or renumbered away) and replaced by any record
  under the same id in one transaction is not an orphaning: the check passes when the id
  exists again (as PostgreSQL's own NO ACTION foreign key does).
- **Unchanged references.** An UPDATE now checks and locks only the projects, tasks and workers
  its rows did not name before (as a foreign key skips an unchanged key), so a status change
  never waits on a lock someone holds on the entry's worker.
"""

from __future__ import annotations

import importlib

from django.db import migrations

previous = importlib.import_module("sync.migrations.0006_timeentry_set_based_reference_checks")
TABLE, REFERENCES = previous.TABLE, previous.REFERENCES

# PostgreSQL runs READ UNCOMMITTED as READ COMMITTED.
READ_COMMITTED_ONLY = """
    IF current_setting('transaction_isolation') NOT IN ('read committed', 'read uncommitted') THEN
        RAISE EXCEPTION '% of %.% needs READ COMMITTED isolation', {what}, TG_TABLE_NAME, {which}
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'An entry committed after this transaction''s snapshot would not be '
                           'seen, so time entries could be left naming a missing record.',
                  HINT = 'Run it at READ COMMITTED (docs/decisions.md #28).';
    END IF;"""

FORWARD = f"""
CREATE FUNCTION sync_timeentry_changed_references_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN{''.join(previous._lock_and_check(
    column, table, f"SELECT {column} AS id FROM new_entries EXCEPT SELECT {column} FROM old_entries"
) for column, table in REFERENCES)}
    RETURN NULL;
END
$$;
DROP TRIGGER timeentry_references_update ON {TABLE};
CREATE TRIGGER timeentry_references_update AFTER UPDATE ON {TABLE}
    REFERENCING OLD TABLE AS old_entries NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION sync_timeentry_changed_references_check();

CREATE OR REPLACE FUNCTION sync_timeentry_referenced_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    back boolean;
    named boolean;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NULL;
    END IF;
    -- Put back under the same id in this transaction: no other transaction can have, as its
    -- insert would wait on the unique index for this one's delete.
    EXECUTE format('SELECT true FROM %I WHERE id = $1', TG_TABLE_NAME) INTO back USING OLD.id;
    IF back THEN
        RETURN NULL;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM {TABLE} WHERE %I = $1)', TG_ARGV[0])
        INTO named USING OLD.id;
    IF named THEN
        RAISE EXCEPTION '%.id % is still named by time entries', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;{READ_COMMITTED_ONLY.format(what="lower(TG_OP)", which="'id ' || OLD.id")}
    RETURN NULL;
END
$$;

CREATE FUNCTION sync_timeentry_truncate_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM {TABLE}) THEN
        RAISE EXCEPTION '% cannot be truncated while time entries name its rows', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME,
                  HINT = 'Truncate {TABLE} in the same statement.';
    END IF;{READ_COMMITTED_ONLY.format(what="'truncate'", which="'*'")}
    RETURN NULL;
END
$$;
""" + "".join(f"""
CREATE TRIGGER timeentry_{column.removesuffix('_id')}_truncated AFTER TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION sync_timeentry_truncate_check();
""" for column, table in REFERENCES)

BACKWARD = "".join(
    f"DROP TRIGGER timeentry_{column.removesuffix('_id')}_truncated ON {table};\n"
    for column, table in REFERENCES
) + f"""
DROP FUNCTION sync_timeentry_truncate_check();
DROP TRIGGER timeentry_references_update ON {TABLE};
DROP FUNCTION sync_timeentry_changed_references_check();
""" + previous.UPDATE_TRIGGER + previous.REFERENCED_FUNCTION.replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)  # no placeholders: % is PL/pgSQL here


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("sync", "0006_timeentry_set_based_reference_checks"),
    ]

    operations = [migrations.RunPython(forward, backward, elidable=False)]
