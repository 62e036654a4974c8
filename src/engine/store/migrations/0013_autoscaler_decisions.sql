-- The autoscaler's decisions worth keeping, with what they were taken from, for the dashboard's swarm page:
-- every one that scaled, failed or ran the node-group hook, and a hold (hold, cooldown, draining) only when
-- it differs from the queue's previous row. The autoscaler prunes a stack's rows as it writes them (its last
-- 500, none older than 7 days), so the table stays small without a job of its own.
CREATE TABLE autoscaler_decisions (
  decision_id bigserial PRIMARY KEY,
  decided_at  timestamptz NOT NULL,
  stack       text NOT NULL,
  queue       text NOT NULL,
  service     text NOT NULL,
  -- up, down, hold, cooldown, draining, read-failed (engine/autoscale/decide.ts).
  action      text NOT NULL,
  -- Replicas before the pass, the backlog's wish, and after it; null where the service could not be read.
  current     integer,
  wanted      integer,
  target      integer,
  scaled      boolean NOT NULL,
  -- {ready, unacked, running, backlog, concurrency, min, max, cooldownLeftMs}; ready.. null when unread.
  inputs      jsonb NOT NULL,
  -- The node-group hook's part: {desired, hook, error}; null for a queue without a hook.
  nodes       jsonb,
  reason      text NOT NULL,
  error       text
);
-- The dashboard reads a stack's newest rows; the autoscaler reads a queue's newest one.
CREATE INDEX autoscaler_decisions_stack_idx ON autoscaler_decisions (stack, decision_id DESC);
CREATE INDEX autoscaler_decisions_queue_idx ON autoscaler_decisions (stack, queue, decision_id DESC);
