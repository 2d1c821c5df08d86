-- Undoes timeentry_references.sql (migration sync 0001 unapplied).
DROP TRIGGER IF EXISTS timeentry_project_truncated ON sync_project;
DROP TRIGGER IF EXISTS timeentry_project_referenced ON sync_project;
DROP TRIGGER IF EXISTS timeentry_task_truncated ON sync_task;
DROP TRIGGER IF EXISTS timeentry_task_referenced ON sync_task;
DROP TRIGGER IF EXISTS timeentry_worker_truncated ON sync_worker;
DROP TRIGGER IF EXISTS timeentry_worker_referenced ON sync_worker;
DROP TRIGGER IF EXISTS timeentry_references_insert ON sync_timeentry;
DROP TRIGGER IF EXISTS timeentry_references_update ON sync_timeentry;
DROP FUNCTION IF EXISTS sync_timeentry_references_check();
DROP FUNCTION IF EXISTS sync_timeentry_changed_references_check();
DROP FUNCTION IF EXISTS sync_timeentry_referenced_check();
DROP FUNCTION IF EXISTS sync_timeentry_truncate_check();
