/**
 * What a scheduling pass locks and reads about runs: queued runs that may start, running runs to judge (under
 * row locks taken with SKIP LOCKED, so several schedulers share the work), and runs to end or time out.
 */
import type { RunState } from '../../core/states.js';
import type { Queryable } from './db.js';
import { lockBackfillSlots } from './backfills.js';
import { RunRow } from './runs.js';

/**
 * Queued runs that may start now, locked so that a second scheduler skips them: their DAG is not paused
 * and has a free slot under its max_active_runs. Runs beyond the free slots stay queued. A backfill's runs
 * count against the backfill's max_active_runs instead of the DAG's (and not in the DAG's count), so a
 * backfill neither floods the workers nor holds back the DAG's scheduled and manual runs.
 */
export async function lockStartableRuns(q: Queryable, limit: number): Promise<RunRow[]> {
  const queued = (
    await q.query<RunRow & { limited: boolean }>(
      `SELECT r.*, (d.max_active_runs IS NOT NULL OR d.max_active_tasks IS NOT NULL) AS limited
       FROM dag_runs r LEFT JOIN dags d ON d.dag_id = r.dag_id
       LEFT JOIN backfills b ON b.backfill_id = r.backfill_id
       WHERE r.state = 'queued' AND NOT COALESCE(d.is_paused, false)
         AND CASE WHEN r.backfill_id IS NULL THEN
               d.max_active_runs IS NULL OR d.max_active_runs > (SELECT count(*) FROM dag_runs x
                 WHERE x.dag_id = r.dag_id AND x.state = 'running' AND x.backfill_id IS NULL)
             ELSE b.state = 'running' AND b.max_active_runs > (SELECT count(*) FROM dag_runs x
                 WHERE x.backfill_id = r.backfill_id AND x.state = 'running') END
       ORDER BY r.created_at LIMIT $1 FOR UPDATE OF r SKIP LOCKED`,
      [limit],
    )
  ).rows;
  const limited = [...new Set(queued.filter((r) => r.limited).map((r) => r.dag_id))];
  const free = await lockDagSlots(q, limited);
  const backfillFree = await lockBackfillSlots(q, [
    ...new Set(queued.flatMap((r) => (r.backfill_id == null ? [] : [r.backfill_id]))),
  ]);
  const out: RunRow[] = [];
  for (const { limited: _, ...r } of queued) {
    if (r.backfill_id != null) {
      const left = backfillFree.get(r.backfill_id) ?? 0;
      if (left > 0) {
        backfillFree.set(r.backfill_id, left - 1);
        out.push(r);
      }
      continue;
    }
    const left = free.get(r.dag_id);
    if (left === undefined || left === null) out.push(r);
    else if (left > 0) {
      free.set(r.dag_id, left - 1);
      out.push(r);
    }
  }
  return out;
}

/** Whether any run is queued (paused or capped ones included): lockStartableRuns has work only then. */
export async function anyQueuedRuns(q: Queryable): Promise<boolean> {
  return (
    await q.query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM dag_runs WHERE state = 'queued') AS any`)
  ).rows[0]!.any;
}

/**
 * Locks the rows of DAGs with concurrency limits, in id order (so two schedulers cannot deadlock), for
 * the rest of the transaction: starting runs and queueing tasks of one DAG is then serialised across
 * schedulers. Returns the free run slots of each DAG (null: no run limit); backfill runs take none of them.
 */
export async function lockDagSlots(q: Queryable, dagIds: string[]): Promise<Map<string, number | null>> {
  if (dagIds.length === 0) return new Map();
  const locked = (
    await q.query<{ dag_id: string; max_active_runs: number | null }>(
      `SELECT dag_id, max_active_runs FROM dags WHERE dag_id = ANY($1) ORDER BY dag_id FOR UPDATE`,
      [dagIds],
    )
  ).rows;
  // Counted in a statement of its own, after the lock: it sees what the previous holder committed.
  const running = new Map(
    (
      await q.query<{ dag_id: string; n: number }>(
        `SELECT dag_id, count(*)::int AS n FROM dag_runs
         WHERE dag_id = ANY($1) AND state = 'running' AND backfill_id IS NULL GROUP BY dag_id`,
        [dagIds],
      )
    ).rows.map((r) => [r.dag_id, r.n]),
  );
  return new Map(
    locked.map((d) => [
      d.dag_id,
      d.max_active_runs === null ? null : Math.max(0, d.max_active_runs - (running.get(d.dag_id) ?? 0)),
    ]),
  );
}

/** Of the given run ids, those still running (the others need no further scheduling). */
export async function filterRunning(q: Queryable, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  return (
    await q.query<{ run_id: string }>(
      `SELECT run_id FROM dag_runs WHERE run_id = ANY($1) AND state = 'running'`,
      [ids],
    )
  ).rows.map((r) => r.run_id);
}

/**
 * The given run ids plus the other running runs that may wait for a slot those runs freed: runs of the
 * same DAGs where those DAGs limit their active tasks, and runs with tasks waiting for a pool that the
 * given runs' tasks use.
 */
export async function withCappedSiblings(q: Queryable, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return ids;
  const extra = (
    await q.query<{ run_id: string }>(
      `SELECT x.run_id FROM dag_runs x
       WHERE x.state = 'running' AND NOT (x.run_id = ANY($1)) AND x.dag_id IN (
         SELECT r.dag_id FROM dag_runs r JOIN dags d ON d.dag_id = r.dag_id
         WHERE r.run_id = ANY($1) AND d.max_active_tasks IS NOT NULL)
       UNION
       SELECT DISTINCT w.run_id FROM task_instances w JOIN dag_runs x ON x.run_id = w.run_id
       WHERE x.state = 'running' AND NOT (w.run_id = ANY($1)) AND w.state IN ('none', 'up_for_retry')
         AND w.pool IN (SELECT pool FROM task_instances WHERE run_id = ANY($1) AND pool IS NOT NULL)`,
      [ids],
    )
  ).rows.map((r) => r.run_id);
  return extra.length === 0 ? ids : [...ids, ...extra];
}

export async function runningRunIds(q: Queryable): Promise<string[]> {
  return (
    await q.query<{ run_id: string }>(
      `SELECT run_id FROM dag_runs WHERE state = 'running' ORDER BY created_at`,
    )
  ).rows.map((r) => r.run_id);
}

/**
 * Running runs among the given ids, locked against other schedulers (who skip them). NO KEY UPDATE: a
 * plain FOR UPDATE also conflicts with the KEY SHARE locks that the foreign-key checks of workers' claims
 * and results take on the run row, so a busy run was skipped (and deferred) on most passes.
 */
export async function lockRunningRuns(q: Queryable, ids: string[], limit: number): Promise<RunRow[]> {
  return (
    await q.query<RunRow>(
      `SELECT * FROM dag_runs WHERE state = 'running' AND run_id = ANY($1)
       ORDER BY created_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED`,
      [ids, limit],
    )
  ).rows;
}

export async function markRunning(q: Queryable, runIds: string[]) {
  if (runIds.length === 0) return;
  await q.query(
    `UPDATE dag_runs SET state = 'running', started_at = now() WHERE run_id = ANY($1) AND state = 'queued'`,
    [runIds],
  );
}

/**
 * Ends runs; only a run still running can end, so a late decision never overwrites a cancel. Returns the
 * runs it ended (each announced on the channel).
 */
export async function finishRuns(
  q: Queryable,
  items: Array<{ runId: string; state: RunState }>,
  channel: string,
): Promise<Set<string>> {
  if (items.length === 0) return new Set();
  const r = await q.query<{ run_id: string }>(
    `WITH upd AS (
       UPDATE dag_runs r SET state = x.state, ended_at = now()
       FROM unnest($1::text[], $2::text[]) AS x(run_id, state)
       WHERE r.run_id = x.run_id AND r.state = 'running' RETURNING r.run_id)
     SELECT run_id, pg_notify($3, 'run:' || run_id) FROM upd`,
    [items.map((i) => i.runId), items.map((i) => i.state), channel],
  );
  return new Set(r.rows.map((x) => x.run_id));
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
