/**
 * Backfills as rows, and the changes a backfill makes to the runs of its range. Its runs are ordinary
 * scheduled runs (created with createRuns, so a run the scheduler creates at the same time is one row)
 * that carry the backfill's id: the scheduler starts them under the backfill's max_active_runs
 * (run-passes.ts). Every change to a run is conditional on the state it was seen in.
 */
import type { RunState } from '../../core/states.js';
import type { Queryable } from './db.js';

export type Reprocess = 'none' | 'failed' | 'all';
export type BackfillState = 'running' | 'done' | 'cancelled';

export interface BackfillRow {
  backfill_id: number;
  dag_id: string;
  from_date: Date;
  to_date: Date;
  reprocess: Reprocess;
  max_active_runs: number;
  state: BackfillState;
  created_at: Date;
  ended_at: Date | null;
}

/**
 * Records a backfill; undefined when the DAG already has a running one (one at a time per DAG, by a
 * unique index, so two racing callers cannot both start one).
 */
export async function insertBackfill(
  q: Queryable,
  b: { dagId: string; from: Date; to: Date; reprocess: Reprocess; maxActiveRuns: number },
): Promise<BackfillRow | undefined> {
  return (
    await q.query<BackfillRow>(
      `INSERT INTO backfills (dag_id, from_date, to_date, reprocess, max_active_runs)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (dag_id) WHERE state = 'running' DO NOTHING RETURNING *`,
      [b.dagId, b.from, b.to, b.reprocess, b.maxActiveRuns],
    )
  ).rows[0];
}

/** The DAG's running backfill, if any. */
export async function runningBackfill(q: Queryable, dagId: string): Promise<BackfillRow | undefined> {
  return (
    await q.query<BackfillRow>(`SELECT * FROM backfills WHERE dag_id = $1 AND state = 'running'`, [dagId])
  ).rows[0];
}

export async function getBackfill(q: Queryable, id: number): Promise<BackfillRow | undefined> {
  return (await q.query<BackfillRow>(`SELECT * FROM backfills WHERE backfill_id = $1`, [id])).rows[0];
}

export async function listBackfills(
  q: Queryable,
  f: { dagId?: string; limit?: number } = {},
): Promise<BackfillRow[]> {
  return (
    await q.query<BackfillRow>(
      `SELECT * FROM backfills WHERE ($1::text IS NULL OR dag_id = $1) ORDER BY backfill_id DESC LIMIT $2`,
      [f.dagId ?? null, f.limit ?? 50],
    )
  ).rows;
}

/** Count of each backfill's runs by state. */
export async function backfillRunCounts(
  q: Queryable,
  ids: number[],
): Promise<Map<number, Partial<Record<RunState, number>>>> {
  const out = new Map<number, Partial<Record<RunState, number>>>();
  if (ids.length === 0) return out;
  const r = await q.query<{ backfill_id: number; state: RunState; n: number }>(
    `SELECT backfill_id, state, count(*)::int AS n FROM dag_runs WHERE backfill_id = ANY($1)
     GROUP BY backfill_id, state`,
    [ids],
  );
  for (const x of r.rows) out.set(x.backfill_id, { ...out.get(x.backfill_id), [x.state]: x.n });
  return out;
}

/** The runs among the ids that exist, with their state and backfill. */
export async function existingRuns(
  q: Queryable,
  runIds: string[],
): Promise<Map<string, { state: RunState; backfillId: number | null }>> {
  const r = await q.query<{ run_id: string; state: RunState; backfill_id: number | null }>(
    `SELECT run_id, state, backfill_id FROM dag_runs WHERE run_id = ANY($1)`,
    [runIds],
  );
  return new Map(r.rows.map((x) => [x.run_id, { state: x.state, backfillId: x.backfill_id }]));
}

/**
 * Marks runs the caller has just created (same transaction, so no scheduler has seen them yet) as
 * the backfill's.
 */
export async function adoptCreatedRuns(q: Queryable, backfillId: number, runIds: string[]) {
  if (runIds.length === 0) return;
  await q.query(
    `UPDATE dag_runs SET backfill_id = $1 WHERE run_id = ANY($2) AND state = 'queued' AND backfill_id IS NULL`,
    [backfillId, runIds],
  );
}

/**
 * Runs that ended go back to 'queued' as the backfill's, for the scheduler to start again under its limit:
 * only those still in the state the caller saw (a run that changed meanwhile is left alone). Their task
 * instances go back to 'none' with their try history kept, as `tasks clear` does: all of them, or with
 * `keepSucceeded` all but those that succeeded. Returns the ids re-queued.
 */
export async function requeueEndedRuns(
  q: Queryable,
  backfillId: number,
  items: Array<{ runId: string; from: RunState }>,
  o: { keepSucceeded: boolean; eventsChannel: string },
): Promise<string[]> {
  const ended = items.filter((i) => ['success', 'failed', 'cancelled'].includes(i.from));
  if (ended.length === 0) return [];
  const ids = (
    await q.query<{ run_id: string }>(
      `UPDATE dag_runs r SET state = 'queued', backfill_id = $1, started_at = NULL, ended_at = NULL,
         error = NULL
       FROM unnest($2::text[], $3::text[]) AS x(run_id, from_state)
       WHERE r.run_id = x.run_id AND r.state = x.from_state RETURNING r.run_id`,
      [backfillId, ended.map((i) => i.runId), ended.map((i) => i.from)],
    )
  ).rows.map((r) => r.run_id);
  if (ids.length === 0) return ids;
  // The items of a mapped task that goes back go with it (`<task>[<index>]`; its next list makes them anew),
  // as `tasks clear` does; task ids have no '[' otherwise, so this deletes nothing else.
  await q.query(
    `DELETE FROM task_instances i
     WHERE i.run_id = ANY($1) AND i.task_id LIKE '%]' AND i.state NOT IN ('queued', 'running')
       AND EXISTS (SELECT 1 FROM task_instances p WHERE p.run_id = i.run_id
                   AND p.task_id = split_part(i.task_id, '[', 1) AND NOT ($2 AND p.state = 'success'))`,
    [ids, o.keepSucceeded],
  );
  await q.query(
    `UPDATE task_instances SET state = 'none', failed_tries = 0, lost_tries = 0, claim_token = NULL,
       worker_id = NULL, next_retry_at = NULL, queued_at = NULL, started_at = NULL, ended_at = NULL,
       exit_code = NULL, output = NULL, error = NULL
     WHERE run_id = ANY($1) AND state NOT IN ('queued', 'running') AND NOT ($2 AND state = 'success')`,
    [ids, o.keepSucceeded],
  );
  // The payload is the run id, as for a new run: the schedulers start it in their next pass.
  await q.query(`SELECT pg_notify($1, id) FROM unnest($2::text[]) AS id`, [o.eventsChannel, ids]);
  return ids;
}

/** Running backfills (of one DAG, or all) none of whose runs is queued or running become 'done'. */
export async function settleBackfills(q: Queryable, dagId?: string) {
  await q.query(
    `UPDATE backfills b SET state = 'done', ended_at = now()
     WHERE b.state = 'running' AND ($1::text IS NULL OR b.dag_id = $1) AND NOT EXISTS (
       SELECT 1 FROM dag_runs r WHERE r.backfill_id = b.backfill_id AND r.state IN ('queued', 'running'))`,
    [dagId ?? null],
  );
}

/**
 * Cancels a running backfill: its queued runs end 'cancelled' (they never start; a re-queued run's tasks
 * too) and the backfill stops. Its running runs go on (`runs cancel` stops one). Runs first, then the
 * backfill row: the order a scheduler starting runs takes them in, so the two cannot deadlock. Returns the
 * runs cancelled, or undefined when the backfill was not running.
 */
export async function cancelBackfill(
  q: Queryable,
  backfillId: number,
  o: { reason: string; eventsChannel: string },
): Promise<string[] | undefined> {
  const runIds = (
    await q.query<{ run_id: string }>(
      `WITH upd AS (
         UPDATE dag_runs SET state = 'cancelled', ended_at = now(), error = $2
         WHERE backfill_id = $1 AND state = 'queued' RETURNING run_id)
       SELECT run_id, pg_notify($3, 'run:' || run_id) FROM upd`,
      [backfillId, o.reason, o.eventsChannel],
    )
  ).rows.map((r) => r.run_id);
  if (runIds.length > 0)
    await q.query(
      `UPDATE task_instances SET state = 'cancelled', ended_at = now(), error = $2, next_retry_at = NULL
       WHERE run_id = ANY($1) AND state IN ('none', 'up_for_retry')`,
      [runIds, o.reason],
    );
  const r = await q.query(
    `UPDATE backfills SET state = 'cancelled', ended_at = now() WHERE backfill_id = $1 AND state = 'running'`,
    [backfillId],
  );
  return r.rowCount === 0 ? undefined : runIds;
}

/**
 * Locks the rows of running backfills, in id order, after the DAG rows (lockDagSlots) so that two
 * schedulers cannot deadlock; returns each one's free run slots (a backfill no longer running has none).
 */
export async function lockBackfillSlots(q: Queryable, ids: number[]): Promise<Map<number, number>> {
  if (ids.length === 0) return new Map();
  const locked = (
    await q.query<{ backfill_id: number; max_active_runs: number; state: BackfillState }>(
      `SELECT backfill_id, max_active_runs, state FROM backfills WHERE backfill_id = ANY($1)
       ORDER BY backfill_id FOR UPDATE`,
      [ids],
    )
  ).rows;
  // Counted after the lock: it sees what the previous holder committed.
  const running = new Map(
    (
      await q.query<{ backfill_id: number; n: number }>(
        `SELECT backfill_id, count(*)::int AS n FROM dag_runs WHERE backfill_id = ANY($1) AND state = 'running'
         GROUP BY backfill_id`,
        [ids],
      )
    ).rows.map((r) => [r.backfill_id, r.n]),
  );
  return new Map(
    locked.map((b) => [
      b.backfill_id,
      b.state !== 'running' ? 0 : Math.max(0, b.max_active_runs - (running.get(b.backfill_id) ?? 0)),
    ]),
  );
}
