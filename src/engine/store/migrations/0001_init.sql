-- airtasks schema, version 1. Append-only: change the schema in a new numbered file.

CREATE TABLE dags (
  dag_id        text PRIMARY KEY,
  fileloc       text NOT NULL,
  hash          text NOT NULL,
  is_paused     boolean NOT NULL DEFAULT false,
  is_active     boolean NOT NULL DEFAULT true,   -- false once its file no longer defines it
  description   text NOT NULL DEFAULT '',
  tags          text[] NOT NULL DEFAULT '{}',
  updated_at    timestamptz NOT NULL DEFAULT now(),
  last_parsed_at timestamptz NOT NULL DEFAULT now()
);

-- Every version of every DAG ever seen; runs are pinned to one, so scheduling never runs user code.
CREATE TABLE dag_versions (
  hash          text PRIMARY KEY,
  dag_id        text NOT NULL,
  serialized    jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE import_errors (
  fileloc       text PRIMARY KEY,
  message       text NOT NULL,
  occurred_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dag_runs (
  run_id        text PRIMARY KEY,
  dag_id        text NOT NULL,
  dag_hash      text NOT NULL REFERENCES dag_versions(hash),
  state         text NOT NULL CHECK (state IN ('queued','running','success','failed','cancelled')),
  run_type      text NOT NULL DEFAULT 'manual',
  conf          jsonb NOT NULL DEFAULT '{}',
  logical_date  timestamptz NOT NULL DEFAULT now(),
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  ended_at      timestamptz
);
CREATE INDEX dag_runs_dag_idx ON dag_runs (dag_id, created_at DESC);
CREATE INDEX dag_runs_active_idx ON dag_runs (state) WHERE state IN ('queued','running');

CREATE TABLE task_instances (
  run_id        text NOT NULL REFERENCES dag_runs(run_id) ON DELETE CASCADE,
  task_id       text NOT NULL,
  state         text NOT NULL CHECK (state IN
                  ('none','queued','running','success','failed','upstream_failed','skipped','up_for_retry')),
  queue         text NOT NULL,
  priority      integer NOT NULL DEFAULT 1,
  try_number    integer NOT NULL DEFAULT 0,  -- tries started so far; the message names the try it is for
  failed_tries  integer NOT NULL DEFAULT 0,  -- tries the task itself failed (counted against retries)
  lost_tries    integer NOT NULL DEFAULT 0,  -- tries lost with their worker (not counted against retries)
  claim_token   uuid,                        -- fencing token of the current claim
  worker_id     text,
  next_retry_at timestamptz,
  queued_at     timestamptz,
  started_at    timestamptz,
  ended_at      timestamptz,
  exit_code     integer,
  output        jsonb,
  error         text,
  PRIMARY KEY (run_id, task_id)
);
CREATE INDEX task_instances_running_idx ON task_instances (worker_id) WHERE state = 'running';
CREATE INDEX task_instances_retry_idx ON task_instances (next_retry_at) WHERE state = 'up_for_retry';
CREATE INDEX task_instances_queued_idx ON task_instances (queued_at) WHERE state = 'queued';

-- One row per try, kept after the task instance moves on.
CREATE TABLE task_tries (
  run_id        text NOT NULL,
  task_id       text NOT NULL,
  try_number    integer NOT NULL,
  state         text NOT NULL,
  worker_id     text,
  started_at    timestamptz,
  ended_at      timestamptz,
  exit_code     integer,
  error         text,
  PRIMARY KEY (run_id, task_id, try_number),
  FOREIGN KEY (run_id) REFERENCES dag_runs(run_id) ON DELETE CASCADE
);

CREATE TABLE task_logs (
  id            bigserial PRIMARY KEY,
  run_id        text NOT NULL,
  task_id       text NOT NULL,
  try_number    integer NOT NULL,
  stream        text NOT NULL,
  ts            timestamptz NOT NULL DEFAULT now(),
  line          text NOT NULL,
  FOREIGN KEY (run_id) REFERENCES dag_runs(run_id) ON DELETE CASCADE
);
CREATE INDEX task_logs_ti_idx ON task_logs (run_id, task_id, try_number, id);

CREATE TABLE variables (
  key           text PRIMARY KEY,
  value         text NOT NULL,
  is_secret     boolean NOT NULL DEFAULT false,
  description   text NOT NULL DEFAULT '',
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workers (
  worker_id     text PRIMARY KEY,
  hostname      text NOT NULL,
  pid           integer NOT NULL,
  queues        text[] NOT NULL,
  concurrency   integer NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  heartbeat_at  timestamptz NOT NULL DEFAULT now(),
  stopped_at    timestamptz
);

-- Transactional outbox: a task moves to 'queued' in the same transaction that adds its message here,
-- so a scheduler that dies before publishing loses nothing; rows are deleted once the broker confirmed.
CREATE TABLE outbox (
  id            bigserial PRIMARY KEY,
  queue         text NOT NULL,
  priority      integer NOT NULL DEFAULT 1,
  payload       jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- The Postgres broker's queue (used when no broker URL is configured).
CREATE TABLE queue_messages (
  id            bigserial PRIMARY KEY,
  queue         text NOT NULL,
  priority      integer NOT NULL DEFAULT 1,
  payload       jsonb NOT NULL,
  enqueued_at   timestamptz NOT NULL DEFAULT now(),
  deliveries    integer NOT NULL DEFAULT 0,
  lease_owner   text,
  lease_until   timestamptz
);
CREATE INDEX queue_messages_pick_idx ON queue_messages (queue, priority DESC, id);
