/**
 * Reads for the dashboard: windows of runs and task states (a page never loads a whole 5,000-run history
 * or a 10,000-task run at once), DAG versions, what workers run now, and cheap change stamps that the
 * live-update poller compares every second.
 */
import type { Queryable } from './db.js';
import type { RunRow } from './runs.js';

/** Runs of a DAG, newest first, created before `before` (a cursor: the last page's oldest created_at). */
export async function runsWindow(
  q: Queryable,
  dagId: string,
  o: { limit: number; before?: Date | null },
): Promise<{ runs: RunRow[]; total: number }> {
  const rows = (
    await q.query<RunRow>(
      `SELECT * FROM dag_runs WHERE dag_id = $1 AND ($2::timestamptz IS NULL OR created_at < $2)
       ORDER BY created_at DESC LIMIT $3`,
      [dagId, o.before ?? null, o.limit],
    )
  ).rows;
  const total = Number(
    (await q.query<{ n: string }>(`SELECT count(*) AS n FROM dag_runs WHERE dag_id = $1`, [dagId])).rows[0]
      ?.n ?? 0,
  );
  return { runs: rows, total };
}

/** States of the given tasks in the given runs (one grid window). */
export async function gridCells(
  q: Queryable,
  runIds: string[],
  taskIds: string[],
): Promise<Array<{ run_id: string; task_id: string; state: string; try_number: number }>> {
  if (runIds.length === 0 || taskIds.length === 0) return [];
  return (
    await q.query<{ run_id: string; task_id: string; state: string; try_number: number }>(
      `SELECT run_id, task_id, state, try_number FROM task_instances
       WHERE run_id = ANY($1::text[]) AND task_id = ANY($2::text[])`,
      [runIds, taskIds],
    )
  ).rows;
}

/** The last `n` runs' states of every DAG, newest first. */
export async function recentRunStates(
  q: Queryable,
  n: number,
): Promise<Array<{ dag_id: string; run_id: string; state: string; created_at: Date }>> {
  return (
    await q.query<{ dag_id: string; run_id: string; state: string; created_at: Date }>(
      `SELECT r.dag_id, r.run_id, r.state, r.created_at FROM dags d
       CROSS JOIN LATERAL (SELECT * FROM dag_runs x WHERE x.dag_id = d.dag_id ORDER BY created_at DESC LIMIT $1) r
       WHERE d.is_active ORDER BY r.dag_id, r.created_at DESC`,
      [n],
    )
  ).rows;
}

export async function dagVersions(
  q: Queryable,
  dagId: string,
): Promise<Array<{ hash: string; created_at: Date; tasks: number; runs: number }>> {
  return (
    await q.query<{ hash: string; created_at: Date; tasks: number; runs: number }>(
      `SELECT v.hash, v.created_at, jsonb_array_length(v.serialized->'tasks') AS tasks,
              (SELECT count(*)::int FROM dag_runs r WHERE r.dag_hash = v.hash) AS runs
       FROM dag_versions v WHERE v.dag_id = $1 ORDER BY v.created_at DESC LIMIT 50`,
      [dagId],
    )
  ).rows;
}

/** The tasks each worker runs now. */
export async function runningByWorker(
  q: Queryable,
): Promise<
  Array<{ worker_id: string; run_id: string; task_id: string; try_number: number; started_at: Date | null }>
> {
  return (
    await q.query<{
      worker_id: string;
      run_id: string;
      task_id: string;
      try_number: number;
      started_at: Date | null;
    }>(
      `SELECT worker_id, run_id, task_id, try_number, started_at FROM task_instances
       WHERE state = 'running' AND worker_id IS NOT NULL ORDER BY started_at`,
    )
  ).rows;
}

/**
 * A stamp that changes when anything a run's page shows changes: its state, its tasks' states and tries,
 * and its newest log line. Hashed in the database so a 10,000-task run costs one short row.
 */
export async function runStamp(q: Queryable, runId: string): Promise<string> {
  const r = await q.query<{ s: string | null }>(
    `SELECT (SELECT state FROM dag_runs WHERE run_id = $1) || ':' ||
            coalesce((SELECT md5(string_agg(task_id || state || try_number, ',' ORDER BY task_id))
                      FROM task_instances WHERE run_id = $1), '') || ':' ||
            coalesce((SELECT max(id)::text FROM task_logs WHERE run_id = $1), '0') AS s`,
    [runId],
  );
  return r.rows[0]?.s ?? '';
}

/**
 * A stamp of everything the overview pages show: DAGs, runs, task states, workers and who holds their GPUs,
 * pools, variables.
 */
export async function globalStamp(q: Queryable): Promise<string> {
  const r = await q.query<{ s: string }>(
    `SELECT concat_ws(':',
       (SELECT max(updated_at) FROM dags), (SELECT count(*) FROM dags WHERE is_paused),
       (SELECT count(*) FROM import_errors), (SELECT max(occurred_at) FROM import_errors),
       (SELECT max(greatest(created_at, started_at, ended_at)) FROM dag_runs),
       (SELECT count(*) FROM dag_runs WHERE state IN ('queued','running')),
       (SELECT count(*) FROM task_instances WHERE state IN ('queued','running')),
       (SELECT md5(coalesce(string_agg(worker_id || coalesce(stopped_at::text, '') || coalesce(gpus::text, ''), ','), ''))
        FROM workers),
       (SELECT md5(coalesce(string_agg(name || slots, ','), '')) FROM pools),
       (SELECT md5(coalesce(string_agg(key || is_secret, ','), '')) FROM variables)) AS s`,
  );
  return r.rows[0]?.s ?? '';
}
