-- Workers keep the values they mask in task logs (secret variables) in memory: a change to any variable
-- tells them to read again. A trigger rather than the writers, so an edit from psql is seen as well; the
-- channel carries the schema, as Db.channel('variables') does.
CREATE FUNCTION notify_variables_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('airtasks_' || TG_TABLE_SCHEMA || '_variables', '');
  RETURN NULL;
END $$;
CREATE TRIGGER variables_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON variables
  FOR EACH STATEMENT EXECUTE FUNCTION notify_variables_changed();

-- A leaf task's success only matters to the scheduler when it was the run's last unfinished task: the
-- scheduler asks this index (a few rows at most per run) instead of reading every task of the run.
CREATE INDEX task_instances_unfinished_idx ON task_instances (run_id)
  WHERE state IN ('none', 'queued', 'running', 'up_for_retry');

-- Tries and log lines belong to their task instance, not only to their run: with the key on the run, every
-- result (a try row, log lines) took a KEY SHARE lock on the one run row, and many workers finishing tasks
-- of one run at once piled those into multixacts (a large share of Postgres' CPU on a 10,000-task fan-out).
-- The task instance's row is already locked by the result's own update. Deleting a run still deletes all.
-- NOT VALID: rows written before this migration are not checked again.
ALTER TABLE task_tries DROP CONSTRAINT task_tries_run_id_fkey,
  ADD CONSTRAINT task_tries_task_fkey FOREIGN KEY (run_id, task_id)
    REFERENCES task_instances (run_id, task_id) ON DELETE CASCADE NOT VALID;
ALTER TABLE task_logs DROP CONSTRAINT task_logs_run_id_fkey,
  ADD CONSTRAINT task_logs_task_fkey FOREIGN KEY (run_id, task_id)
    REFERENCES task_instances (run_id, task_id) ON DELETE CASCADE NOT VALID;
