/** Queries about DAG runs. */
import type { RunState } from '../../core/states.js';
import { prepared, type Queryable } from './db.js';

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

/**
 * Queued runs that may start now, locked so that a second scheduler skips them: their DAG is not paused
 * and has a free slot under its max_active_runs. Runs beyond the free slots stay queued.
 */
export async function lockStartableRuns(q: Queryable, limit: number): Promise<RunRow[]> {
  const queued = (
    await q.query<RunRow & { limited: boolean }>(
      `SELECT r.*, (d.max_active_runs IS NOT NULL OR d.max_active_tasks IS NOT NULL) AS limited
       FROM dag_runs r LEFT JOIN dags d ON d.dag_id = r.dag_id
       WHERE r.state = 'queued' AND NOT COALESCE(d.is_paused, false)
         AND (d.max_active_runs IS NULL OR d.max_active_runs >
              (SELECT count(*) FROM dag_runs x WHERE x.dag_id = r.dag_id AND x.state = 'running'))
       ORDER BY r.created_at LIMIT $1 FOR UPDATE OF r SKIP LOCKED`,
      [limit],
    )
  ).rows;
  const limited = [...new Set(queued.filter((r) => r.limited).map((r) => r.dag_id))];
  const free = await lockDagSlots(q, limited);
  const out: RunRow[] = [];
  for (const { limited: _, ...r } of queued) {
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
 * schedulers. Returns the free run slots of each DAG (null: no run limit).
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
        `SELECT dag_id, count(*)::int AS n FROM dag_runs WHERE dag_id = ANY($1) AND state = 'running'
         GROUP BY dag_id`,
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

/**
 * Locks a run, waiting for it, as a scheduler pass locks it, for a worker to queue the next tasks of a
 * result already committed; returns the run's state. The transaction commits without waiting for its
 * flush: what it writes is derived from committed results, and a scheduler's sweep derives it again if a
 * crash loses it. Locking nothing else first, it cannot deadlock with a cancel or a clear.
 */
export async function lockRunToAdvance(q: Queryable, runId: string): Promise<RunState | null> {
  const r = await q.query<{ state: RunState }>(
    prepared(
      'lock_run_to_advance',
      `SELECT state, set_config('synchronous_commit', 'off', true) FROM dag_runs WHERE run_id = $1
     FOR NO KEY UPDATE`,
    ),
    [runId],
  );
  return r.rows[0]?.state ?? null;
}

/** Tells the schedulers about a run (the events channel): they look at it on their next pass. */
export async function notifyRun(q: Queryable, channel: string, runId: string) {
  await q.query(`SELECT pg_notify($1, $2)`, [channel, runId]);
}

/**
 * Ends the runs that are over, or tells the schedulers about them: called after a task's result is
 * committed, so of two last tasks ending together at least the later one sees the other finished. A run
 * among `finishable` (its DAG has no run-success callback to queue) whose every task succeeded ends here,
 * 'success' as decide() would judge it, with the 'run:' announcement the scheduler's finishRuns sends;
 * the schedulers hear of it only if a queued run may now start. Any other run with nothing unfinished is
 * left to the schedulers (a failure to judge, a callback to queue). Conditional on the run still running,
 * so a scheduler, a cancel or another worker that got there first wins, and on the run row not having
 * changed since the statement's snapshot: clearing a task of a running run changes the row, and the tasks
 * this statement saw are then stale (it leaves such a run to the schedulers). A NOTIFY serialises commits in
 * Postgres (a lock held through the commit's flush), so a result that does not end its run sends none.
 * Returns the runs it ended.
 */
export async function endRunsIfOver(
  q: Queryable,
  channel: string,
  runIds: string[],
  finishable: string[],
): Promise<string[]> {
  const r = await q.query<{ ended: string | null }>(
    prepared(
      'end_runs_if_over',
      `WITH over AS (
         SELECT r.run_id, r.xmin AS version, r.run_id = ANY($3) AND NOT EXISTS (
                  SELECT 1 FROM task_instances t WHERE t.run_id = r.run_id AND t.state <> 'success') AS succeeded
         FROM dag_runs r WHERE r.run_id = ANY($2) AND r.state = 'running'
           AND NOT EXISTS (SELECT 1 FROM task_instances t WHERE t.run_id = r.run_id
                           AND t.state IN ('none', 'queued', 'running', 'up_for_retry'))),
       ended AS (
         UPDATE dag_runs r SET state = 'success', ended_at = now()
         FROM over WHERE r.run_id = over.run_id AND over.succeeded AND r.state = 'running'
           AND r.xmin = over.version
         RETURNING r.run_id)
       SELECT run_id AS ended, pg_notify($1, 'run:' || run_id),
              CASE WHEN EXISTS (SELECT 1 FROM dag_runs WHERE state = 'queued') THEN pg_notify($1, run_id) END
         FROM ended
       UNION ALL
       SELECT NULL, pg_notify($1, run_id), NULL FROM over WHERE run_id NOT IN (SELECT run_id FROM ended)`,
    ),
    [channel, runIds, finishable],
  );
  return r.rows.flatMap((x) => (x.ended ? [x.ended] : []));
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
