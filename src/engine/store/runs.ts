/** DAG runs as rows: creating them (manual, scheduled and triggered runs alike) and reading them. */
import type { RunState } from '../../core/states.js';
import type { Queryable } from './db.js';

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

export async function runStates(q: Queryable, runIds: string[]): Promise<Map<string, RunState>> {
  const r = await q.query<{ run_id: string; state: RunState }>(
    `SELECT run_id, state FROM dag_runs WHERE run_id = ANY($1)`,
    [runIds],
  );
  return new Map(r.rows.map((x) => [x.run_id, x.state]));
}
