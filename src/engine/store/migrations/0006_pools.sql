-- Pools: named slot counts shared by every DAG. A task in a pool takes pool_slots of its slots while it is
-- queued or running; the scheduler queues it only when that many are free. Tasks without a pool are not
-- limited by any (worker concurrency bounds them).
CREATE TABLE pools (
  name          text PRIMARY KEY,
  slots         integer NOT NULL CHECK (slots >= 0),
  description   text NOT NULL DEFAULT '',
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Copied from the run's pinned DAG version when the task instance is created.
ALTER TABLE task_instances
  ADD COLUMN pool text,
  ADD COLUMN pool_slots integer NOT NULL DEFAULT 1;

-- Occupancy (queued, running) and waiters (none, up_for_retry) of a pool; and the pools a run's tasks use,
-- asked on every scheduling pass: both partial, so DAGs without pools add nothing to them.
CREATE INDEX task_instances_pool_idx ON task_instances (pool, state) WHERE pool IS NOT NULL;
CREATE INDEX task_instances_pooled_run_idx ON task_instances (run_id) WHERE pool IS NOT NULL;
