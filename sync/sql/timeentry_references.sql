-- A time entry's project, task and worker: checked once per statement, not once per row.
--
-- PostgreSQL only (migration sync 0001 runs this file; SQLite has no such check: the ORM's
-- PROTECT refuses a delete, and the posting path resolves every reference before it inserts).
-- The model declares these three foreign keys with db_constraint=False, and this file is the
-- whole of what replaces them, with the same guarantees (docs/decisions.md #28):
--
-- * after each INSERT or UPDATE statement on sync_timeentry, the distinct projects, tasks and
--   workers its rows name (an UPDATE: only those its rows did not name before) are locked FOR
--   KEY SHARE, as a foreign key locks them, and a missing one fails the statement with SQLSTATE
--   23503 (Django's IntegrityError);
-- * deleting a project, task or worker that entries name, or changing its id, fails at commit
--   (deferred, as Django's foreign keys are); one deleted and put back under the same id in the
--   transaction passes;
-- * TRUNCATE of a named table fails while entries exist;
-- * deleting, renumbering or truncating outside READ COMMITTED is refused (SQLSTATE 55000):
--   a trigger cannot take the fresh snapshot a foreign key's check uses.
--
-- Tested in tests/sync/test_reference_checks.py.

CREATE FUNCTION sync_timeentry_references_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    WITH named AS (SELECT DISTINCT project_id AS id FROM new_entries),
         held AS MATERIALIZED (SELECT t.id FROM sync_project t WHERE t.id IN (SELECT id FROM named)
                  FOR KEY SHARE OF t)
    SELECT min(named.id) INTO missing FROM named WHERE named.id NOT IN (SELECT id FROM held);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'time entry refers to sync_project.id % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'sync_timeentry', COLUMN = 'project_id';
    END IF;
    WITH named AS (SELECT DISTINCT task_id AS id FROM new_entries),
         held AS MATERIALIZED (SELECT t.id FROM sync_task t WHERE t.id IN (SELECT id FROM named)
                  FOR KEY SHARE OF t)
    SELECT min(named.id) INTO missing FROM named WHERE named.id NOT IN (SELECT id FROM held);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'time entry refers to sync_task.id % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'sync_timeentry', COLUMN = 'task_id';
    END IF;
    WITH named AS (SELECT DISTINCT worker_id AS id FROM new_entries),
         held AS MATERIALIZED (SELECT t.id FROM sync_worker t WHERE t.id IN (SELECT id FROM named)
                  FOR KEY SHARE OF t)
    SELECT min(named.id) INTO missing FROM named WHERE named.id NOT IN (SELECT id FROM held);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'time entry refers to sync_worker.id % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'sync_timeentry', COLUMN = 'worker_id';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER timeentry_references_insert AFTER INSERT ON sync_timeentry
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION sync_timeentry_references_check();

CREATE FUNCTION sync_timeentry_changed_references_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    WITH named AS (SELECT project_id AS id FROM new_entries EXCEPT SELECT project_id FROM old_entries),
         held AS MATERIALIZED (SELECT t.id FROM sync_project t WHERE t.id IN (SELECT id FROM named)
                  FOR KEY SHARE OF t)
    SELECT min(named.id) INTO missing FROM named WHERE named.id NOT IN (SELECT id FROM held);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'time entry refers to sync_project.id % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'sync_timeentry', COLUMN = 'project_id';
    END IF;
    WITH named AS (SELECT task_id AS id FROM new_entries EXCEPT SELECT task_id FROM old_entries),
         held AS MATERIALIZED (SELECT t.id FROM sync_task t WHERE t.id IN (SELECT id FROM named)
                  FOR KEY SHARE OF t)
    SELECT min(named.id) INTO missing FROM named WHERE named.id NOT IN (SELECT id FROM held);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'time entry refers to sync_task.id % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'sync_timeentry', COLUMN = 'task_id';
    END IF;
    WITH named AS (SELECT worker_id AS id FROM new_entries EXCEPT SELECT worker_id FROM old_entries),
         held AS MATERIALIZED (SELECT t.id FROM sync_worker t WHERE t.id IN (SELECT id FROM named)
                  FOR KEY SHARE OF t)
    SELECT min(named.id) INTO missing FROM named WHERE named.id NOT IN (SELECT id FROM held);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'time entry refers to sync_worker.id % that does not exist', missing
            USING ERRCODE = 'foreign_key_violation', TABLE = 'sync_timeentry', COLUMN = 'worker_id';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER timeentry_references_update AFTER UPDATE ON sync_timeentry
    REFERENCING OLD TABLE AS old_entries NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION sync_timeentry_changed_references_check();

CREATE FUNCTION sync_timeentry_referenced_check() RETURNS trigger
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
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM sync_timeentry WHERE %I = $1)', TG_ARGV[0])
        INTO named USING OLD.id;
    IF named THEN
        RAISE EXCEPTION '%.id % is still named by time entries', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME;
    END IF;
    IF current_setting('transaction_isolation') NOT IN ('read committed', 'read uncommitted') THEN
        RAISE EXCEPTION '% of %.% needs READ COMMITTED isolation', lower(TG_OP), TG_TABLE_NAME, 'id ' || OLD.id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'An entry committed after this transaction''s snapshot would not be '
                           'seen, so time entries could be left naming a missing record.',
                  HINT = 'Run it at READ COMMITTED (docs/decisions.md #28).';
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER timeentry_project_referenced
    AFTER DELETE OR UPDATE OF id ON sync_project DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION sync_timeentry_referenced_check('project_id');

CREATE CONSTRAINT TRIGGER timeentry_task_referenced
    AFTER DELETE OR UPDATE OF id ON sync_task DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION sync_timeentry_referenced_check('task_id');

CREATE CONSTRAINT TRIGGER timeentry_worker_referenced
    AFTER DELETE OR UPDATE OF id ON sync_worker DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION sync_timeentry_referenced_check('worker_id');

CREATE FUNCTION sync_timeentry_truncate_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM sync_timeentry) THEN
        RAISE EXCEPTION '% cannot be truncated while time entries name its rows', TG_TABLE_NAME
            USING ERRCODE = 'foreign_key_violation', TABLE = TG_TABLE_NAME,
                  HINT = 'Truncate sync_timeentry in the same statement.';
    END IF;
    IF current_setting('transaction_isolation') NOT IN ('read committed', 'read uncommitted') THEN
        RAISE EXCEPTION '% of %.% needs READ COMMITTED isolation', 'truncate', TG_TABLE_NAME, '*'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'An entry committed after this transaction''s snapshot would not be '
                           'seen, so time entries could be left naming a missing record.',
                  HINT = 'Run it at READ COMMITTED (docs/decisions.md #28).';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER timeentry_project_truncated AFTER TRUNCATE ON sync_project
    FOR EACH STATEMENT EXECUTE FUNCTION sync_timeentry_truncate_check();

CREATE TRIGGER timeentry_task_truncated AFTER TRUNCATE ON sync_task
    FOR EACH STATEMENT EXECUTE FUNCTION sync_timeentry_truncate_check();

CREATE TRIGGER timeentry_worker_truncated AFTER TRUNCATE ON sync_worker
    FOR EACH STATEMENT EXECUTE FUNCTION sync_timeentry_truncate_check();
