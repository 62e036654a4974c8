/** A worker moving a run on after its successes: the run's lock to judge under, a wake-up, and ending runs that are over. */
import type { RunState } from '../../core/states.js';
import { prepared, type Queryable } from './db.js';

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
