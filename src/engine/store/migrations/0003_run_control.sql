-- Run control: cancelling runs, run timeouts and clearing tasks.
-- 'cancelled': a task that was stopped, or will never start, because its run was cancelled or timed out.
ALTER TABLE task_instances DROP CONSTRAINT task_instances_state_check;
ALTER TABLE task_instances ADD CONSTRAINT task_instances_state_check CHECK (state IN
  ('none','queued','running','success','failed','upstream_failed','skipped','up_for_retry','cancelled'));

-- Why a run ended early (cancelled by a user, timed out); null for runs that ended on their own.
ALTER TABLE dag_runs ADD COLUMN error text;
