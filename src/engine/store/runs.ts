/** Queries about DAG runs. */
import type { Queryable } from './db.js';

export type RunState = 'queued' | 'running' | 'success' | 'failed' | 'cancelled';
export const TERMINAL_RUN_STATES: readonly RunState[] = ['success', 'failed', 'cancelled'];

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
}

export interface NewRun {
  runId: string;
  dagId: string;
  dagHash: string;
  conf: Record<string, unknown>;
  runType?: string;
  logicalDate?: Date;
}

/** Inserts a run and wakes the schedulers; returns false if the run id is taken. */
export async function createRun(q: Queryable, r: NewRun, channel: string): Promise<boolean> {
  const res = await q.query(
    `WITH ins AS (
       INSERT INTO dag_runs (run_id, dag_id, dag_hash, state, run_type, conf, logical_date)
       VALUES ($1, $2, $3, 'queued', $4, $5, COALESCE($6, now()))
       ON CONFLICT (run_id) DO NOTHING RETURNING run_id)
     SELECT pg_notify($7, run_id) FROM ins`,
    [
      r.runId,
      r.dagId,
      r.dagHash,
      r.runType ?? 'manual',
      JSON.stringify(r.conf),
      r.logicalDate ?? null,
      channel,
    ],
  );
  return (res.rowCount ?? 0) > 0;
}

/** Queued runs, locked so that a second scheduler skips them. */
export async function lockQueuedRuns(q: Queryable, limit: number): Promise<RunRow[]> {
  return (
    await q.query<RunRow>(
      `SELECT * FROM dag_runs WHERE state = 'queued' ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit],
    )
  ).rows;
}

export async function runningRunIds(q: Queryable): Promise<string[]> {
  return (
    await q.query<{ run_id: string }>(
      `SELECT run_id FROM dag_runs WHERE state = 'running' ORDER BY created_at`,
    )
  ).rows.map((r) => r.run_id);
}

/** Running runs among the given ids, locked against other schedulers (who skip them). */
export async function lockRunningRuns(q: Queryable, ids: string[], limit: number): Promise<RunRow[]> {
  return (
    await q.query<RunRow>(
      `SELECT * FROM dag_runs WHERE state = 'running' AND run_id = ANY($1)
       ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [ids, limit],
    )
  ).rows;
}

export async function markRunning(q: Queryable, runId: string) {
  await q.query(
    `UPDATE dag_runs SET state = 'running', started_at = now() WHERE run_id = $1 AND state = 'queued'`,
    [runId],
  );
}

/** Ends a run; only a run still running can end, so a late decision never overwrites a cancel. */
export async function finishRun(
  q: Queryable,
  runId: string,
  state: RunState,
  channel: string,
): Promise<boolean> {
  const r = await q.query(
    `WITH upd AS (UPDATE dag_runs SET state = $2, ended_at = now() WHERE run_id = $1 AND state = 'running' RETURNING run_id)
     SELECT pg_notify($3, 'run:' || run_id) FROM upd`,
    [runId, state, channel],
  );
  return (r.rowCount ?? 0) > 0;
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

/** Runs with a retry that has come due: the scheduler must look at them even without an event. */
export async function runsWithDueRetries(q: Queryable): Promise<string[]> {
  return (
    await q.query<{ run_id: string }>(
      `SELECT DISTINCT run_id FROM task_instances WHERE state = 'up_for_retry' AND next_retry_at <= now()`,
    )
  ).rows.map((r) => r.run_id);
}

export interface TimedOutRun {
  runId: string;
  dagId: string;
  timeoutMs: number;
}

/** Running runs that have run longer than their DAG version's runTimeoutMs. */
export async function timedOutRuns(q: Queryable, limit = 100): Promise<TimedOutRun[]> {
  const r = await q.query<{ run_id: string; dag_id: string; timeout_ms: number }>(
    `SELECT r.run_id, r.dag_id, (v.serialized->>'runTimeoutMs')::bigint AS timeout_ms
     FROM dag_runs r JOIN dag_versions v ON v.hash = r.dag_hash
     WHERE r.state = 'running' AND v.serialized->>'runTimeoutMs' IS NOT NULL
       AND r.started_at + make_interval(secs => (v.serialized->>'runTimeoutMs')::double precision / 1000) <= now()
     ORDER BY r.started_at LIMIT $1`,
    [limit],
  );
  return r.rows.map((x) => ({ runId: x.run_id, dagId: x.dag_id, timeoutMs: x.timeout_ms }));
}

/**
 * Inserts the runs whose ids are free (together, waking the schedulers); returns the ids it created and,
 * for every requested id, the DAG of the run that now holds it.
 */
export async function createRuns(
  q: Queryable,
  list: NewRun[],
  channel: string,
): Promise<{ created: string[]; dagIdOf: Map<string, string> }> {
  if (list.length === 0) return { created: [], dagIdOf: new Map() };
  const ins = await q.query<{ run_id: string }>(
    `WITH ins AS (
       INSERT INTO dag_runs (run_id, dag_id, dag_hash, state, run_type, conf)
       SELECT x.run_id, x.dag_id, x.dag_hash, 'queued', x.run_type, x.conf
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])
         AS x(run_id, dag_id, dag_hash, run_type, conf)
       ON CONFLICT (run_id) DO NOTHING RETURNING run_id)
     SELECT run_id, pg_notify($6, run_id) FROM ins`,
    [
      list.map((r) => r.runId),
      list.map((r) => r.dagId),
      list.map((r) => r.dagHash),
      list.map((r) => r.runType ?? 'manual'),
      list.map((r) => JSON.stringify(r.conf)),
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

export async function runStates(q: Queryable, runIds: string[]): Promise<Map<string, RunState>> {
  const r = await q.query<{ run_id: string; state: RunState }>(
    `SELECT run_id, state FROM dag_runs WHERE run_id = ANY($1)`,
    [runIds],
  );
  return new Map(r.rows.map((x) => [x.run_id, x.state]));
}
