/** DAG runs as rows: creating them (manual, scheduled and triggered runs alike) and reading them. */
import type { RunState } from '../../core/states.js';
import { prepared, type Queryable } from './db.js';
import type { OutboxRow } from './outbox.js';

export interface RunRow {
  run_id: string;
  dag_id: string;
  dag_hash: string;
  state: RunState;
  run_type: string;
  conf: Record<string, unknown>;
  logical_date: Date;
  created_at: Date;
  started_at: Date | null;
  ended_at: Date | null;
  /** Why the run ended early (cancelled, timed out); null otherwise. */
  error: string | null;
  /** The backfill that created or re-ran the run (its limit applies instead of the DAG's); null otherwise. */
  backfill_id: number | null;
}

export interface NewRun {
  runId: string;
  dagId: string;
  dagHash: string;
  conf: Record<string, unknown>;
  runType?: string;
  logicalDate?: Date;
}

export async function getRun(q: Queryable, runId: string): Promise<RunRow | undefined> {
  return (await q.query<RunRow>(`SELECT * FROM dag_runs WHERE run_id = $1`, [runId])).rows[0];
}

export async function listRuns(
  q: Queryable,
  f: { dagId?: string; state?: string; limit?: number } = {},
): Promise<RunRow[]> {
  return (
    await q.query<RunRow>(
      `SELECT * FROM dag_runs WHERE ($1::text IS NULL OR dag_id = $1) AND ($2::text IS NULL OR state = $2)
       ORDER BY created_at DESC LIMIT $3`,
      [f.dagId ?? null, f.state ?? null, f.limit ?? 50],
    )
  ).rows;
}

/**
 * Inserts the runs whose ids are free, together, waking the schedulers: manual, scheduled and triggered runs
 * alike (a run id that is taken is never created twice). Returns the ids it created and, for every
 * requested id, the DAG of the run that now holds it.
 */
export async function createRuns(
  q: Queryable,
  list: NewRun[],
  channel: string,
): Promise<{ created: string[]; dagIdOf: Map<string, string> }> {
  if (list.length === 0) return { created: [], dagIdOf: new Map() };
  const ins = await q.query<{ run_id: string }>(
    `WITH ins AS (
       INSERT INTO dag_runs (run_id, dag_id, dag_hash, state, run_type, conf, logical_date)
       SELECT x.run_id, x.dag_id, x.dag_hash, 'queued', x.run_type, x.conf, COALESCE(x.logical_date, now())
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[])
         AS x(run_id, dag_id, dag_hash, run_type, conf, logical_date)
       ON CONFLICT (run_id) DO NOTHING RETURNING run_id)
     SELECT run_id, pg_notify($7, run_id) FROM ins`,
    [
      list.map((r) => r.runId),
      list.map((r) => r.dagId),
      list.map((r) => r.dagHash),
      list.map((r) => r.runType ?? 'manual'),
      list.map((r) => JSON.stringify(r.conf)),
      list.map((r) => r.logicalDate ?? null),
      channel,
    ],
  );
  // A second statement, so that runs another transaction committed meanwhile are seen too.
  const all = await q.query<{ run_id: string; dag_id: string }>(
    `SELECT run_id, dag_id FROM dag_runs WHERE run_id = ANY($1)`,
    [list.map((r) => r.runId)],
  );
  return {
    created: ins.rows.map((r) => r.run_id),
    dagIdOf: new Map(all.rows.map((r) => [r.run_id, r.dag_id])),
  };
}

const CREATE_STARTED_RUN = prepared(
  'create_started_run',
  `WITH d AS (
       SELECT dag_id FROM dags WHERE dag_id = $2 AND is_active AND NOT is_paused
         AND max_active_runs IS NULL AND max_active_tasks IS NULL FOR SHARE),
     run AS (
       INSERT INTO dag_runs (run_id, dag_id, dag_hash, state, run_type, conf, logical_date, started_at)
       SELECT $1, d.dag_id, $3, 'running', $4, $5, COALESCE($6, now()), now() FROM d
       ON CONFLICT (run_id) DO NOTHING RETURNING run_id),
     ti AS (
       INSERT INTO task_instances (run_id, task_id, state, queue, priority, pool, pool_slots, try_number,
                                   queued_at, enqueued_at)
       SELECT run.run_id, t.task_id, CASE WHEN t.queued THEN 'queued' ELSE 'none' END, t.queue, t.priority,
              t.pool, t.pool_slots, CASE WHEN t.queued THEN 1 ELSE 0 END,
              CASE WHEN t.queued THEN now() END, CASE WHEN t.queued THEN now() END
       FROM run, unnest($7::text[], $8::text[], $9::int[], $10::text[], $11::int[], $12::bool[])
         AS t(task_id, queue, priority, pool, pool_slots, queued)
       RETURNING run_id, task_id, state, try_number, queue, priority),
     ob AS (
       INSERT INTO outbox (queue, priority, payload)
       SELECT queue, priority, jsonb_build_object('runId', run_id, 'taskId', task_id, 'tryNumber', try_number)
       FROM ti WHERE state = 'queued' RETURNING id, queue, priority, payload),
     n AS (SELECT pg_notify($13, $14) FROM run WHERE $14::text IS NOT NULL)
     SELECT EXISTS (SELECT 1 FROM run) AS started,
            (SELECT json_agg(json_build_object('id', id, 'queue', queue, 'priority', priority,
                                               'payload', payload)) FROM ob) AS outbox,
            (SELECT count(*) FROM n) AS notified`,
);

/** A task instance of a run created running (createStartedRun): queued at once, or waiting ('none'). */
export interface StartingTask {
  taskId: string;
  queue: string;
  priority: number;
  pool: string | null;
  poolSlots: number;
  queued: boolean;
}

/**
 * Creates a run already running, in one statement: the run, its task instances (the `queued` ones at their
 * first try, with their messages in the outbox) and, when `note` is given, a notification of it on the
 * events channel. Only while its DAG is active, unpaused and without a run or task limit, checked under a
 * share lock of the DAG's row, so a pause or a new limit waits for this commit; otherwise, or when the run
 * id is taken, nothing is written and the result is null (createRuns then queues it for the schedulers).
 */
export async function createStartedRun(
  q: Queryable,
  run: NewRun,
  tasks: StartingTask[],
  channel: string,
  note: string | null,
): Promise<OutboxRow[] | null> {
  const r = await q.query<{ started: boolean; outbox: OutboxRow[] | null }>(CREATE_STARTED_RUN, [
    run.runId,
    run.dagId,
    run.dagHash,
    run.runType ?? 'manual',
    JSON.stringify(run.conf),
    run.logicalDate ?? null,
    tasks.map((t) => t.taskId),
    tasks.map((t) => t.queue),
    tasks.map((t) => t.priority),
    tasks.map((t) => t.pool),
    tasks.map((t) => t.poolSlots),
    tasks.map((t) => t.queued),
    channel,
    note,
  ]);
  const row = r.rows[0]!;
  return row.started ? (row.outbox ?? []) : null;
}

export async function runStates(q: Queryable, runIds: string[]): Promise<Map<string, RunState>> {
  const r = await q.query<{ run_id: string; state: RunState }>(
    `SELECT run_id, state FROM dag_runs WHERE run_id = ANY($1)`,
    [runIds],
  );
  return new Map(r.rows.map((x) => [x.run_id, x.state]));
}
