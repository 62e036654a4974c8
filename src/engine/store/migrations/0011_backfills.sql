-- Backfills: the scheduled runs of a past range of logical dates, created on request (`airtasks backfill`).
-- Their runs are ordinary scheduled runs (same ids as the scheduler's) that point at the backfill; the
-- scheduler starts them under the backfill's own max_active_runs instead of the DAG's, so a long backfill
-- neither floods the workers nor holds back the DAG's scheduled and manual runs.
CREATE TABLE backfills (
  backfill_id     serial PRIMARY KEY,
  dag_id          text NOT NULL,
  from_date       timestamptz NOT NULL,
  to_date         timestamptz NOT NULL,
  reprocess       text NOT NULL CHECK (reprocess IN ('none', 'failed', 'all')),
  max_active_runs integer NOT NULL CHECK (max_active_runs > 0),
  -- running until none of its runs is queued or running (then done), or cancelled.
  state           text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'done', 'cancelled')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  ended_at        timestamptz
);
-- One active backfill per DAG: two at once would each take their own max_active_runs.
CREATE UNIQUE INDEX backfills_one_running_idx ON backfills (dag_id) WHERE state = 'running';

ALTER TABLE dag_runs ADD COLUMN backfill_id integer REFERENCES backfills(backfill_id);
-- The scheduler counts a backfill's running runs on every pass that starts one of its runs.
CREATE INDEX dag_runs_backfill_idx ON dag_runs (backfill_id, state) WHERE backfill_id IS NOT NULL;
