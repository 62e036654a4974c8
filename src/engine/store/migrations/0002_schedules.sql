-- Schedules and concurrency limits of DAGs. Copied from the current version on every parse, so the
-- scheduler can select and gate in SQL; the version's serialized form stays the full truth.
ALTER TABLE dags
  ADD COLUMN schedule          text,         -- cron expression or preset; NULL: manual runs only
  ADD COLUMN timezone          text,
  ADD COLUMN max_active_runs   integer,      -- NULL: no limit
  ADD COLUMN max_active_tasks  integer,      -- NULL: no limit
  -- Schedule bookkeeping, written by the scheduler under the row lock:
  ADD COLUMN last_scheduled_logical_date timestamptz,  -- logical date of the newest scheduled run created
  ADD COLUMN next_logical_date timestamptz,            -- logical date of the next scheduled run
  ADD COLUMN next_run_at       timestamptz,            -- when that run is due (its interval's end)
  ADD COLUMN scheduled_hash    text;                   -- the version next_* were computed for

-- Due schedules: the scheduler looks for rows whose next run has come, or whose version changed.
CREATE INDEX dags_schedule_due_idx ON dags (next_run_at) WHERE schedule IS NOT NULL;
