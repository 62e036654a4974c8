/**
 * Stopping runs (cancel, run timeout) and clearing tasks so they run again. Each is one transaction that
 * first locks the run row (waiting for a scheduler pass in progress; schedulers skip a locked run), then the
 * task rows, and changes only rows still in the states it expects: a worker's late result, a duplicate
 * message or a second scheduler cannot undo it.
 */
import type pg from 'pg';
import type { RunState } from '../../core/states.js';
import type { TaskState } from '../../core/states.js';

export interface StopRunResult {
  /** The run's state before; the run changed only if it was queued or running. */
  previousState: RunState;
  stopped: boolean;
  /** Tasks moved to 'cancelled', with the state they left ('running' ones are stopped by their worker). */
  tasks: Array<{ taskId: string; from: TaskState }>;
}

/**
 * Ends a queued or running run as `runState` with `reason`: its unfinished tasks become 'cancelled', a running
 * try is recorded as cancelled, and the workers are told at once (channel `claims`) so they stop those tasks.
 * Undefined when the run does not exist.
 */
export async function stopRun(
  c: pg.ClientBase,
  runId: string,
  o: { runState: 'cancelled' | 'failed'; reason: string; eventsChannel: string; claimsChannel: string },
): Promise<StopRunResult | undefined> {
  const run = (
    await c.query<{ state: RunState }>(`SELECT state FROM dag_runs WHERE run_id = $1 FOR UPDATE`, [runId])
  ).rows[0];
  if (!run) return undefined;
  if (run.state !== 'queued' && run.state !== 'running') {
    return { previousState: run.state, stopped: false, tasks: [] };
  }
  const locked = (
    await c.query<{ task_id: string; state: TaskState }>(
      `SELECT task_id, state FROM task_instances
       WHERE run_id = $1 AND state IN ('none', 'queued', 'up_for_retry', 'running') FOR UPDATE`,
      [runId],
    )
  ).rows;
  if (locked.length > 0) {
    await c.query(
      `WITH upd AS (
         UPDATE task_instances t SET state = 'cancelled', ended_at = now(), error = $3, next_retry_at = NULL
         FROM unnest($2::text[], $4::text[]) AS x(task_id, from_state)
         WHERE t.run_id = $1 AND t.task_id = x.task_id AND t.state = x.from_state
         RETURNING t.task_id, t.try_number, t.worker_id, t.started_at, t.ended_at, x.from_state)
       INSERT INTO task_tries (run_id, task_id, try_number, state, worker_id, started_at, ended_at, error)
       SELECT $1, task_id, try_number, 'cancelled', worker_id, started_at, ended_at, $3
       FROM upd WHERE from_state = 'running'
       ON CONFLICT DO NOTHING`,
      [runId, locked.map((t) => t.task_id), o.reason, locked.map((t) => t.state)],
    );
  }
  await c.query(
    `UPDATE dag_runs SET state = $2, ended_at = now(), error = $3
     WHERE run_id = $1 AND state IN ('queued', 'running')`,
    [runId, o.runState, o.reason],
  );
  // Delivered at commit: waiters (`trigger dag --wait`) see the end, workers stop the running tries.
  await c.query(`SELECT pg_notify($1, 'run:' || $2::text)`, [o.eventsChannel, runId]);
  if (locked.some((t) => t.state === 'running')) {
    await c.query(`SELECT pg_notify($1, $2::text)`, [o.claimsChannel, runId]);
  }
  return {
    previousState: run.state,
    stopped: true,
    tasks: locked.map((t) => ({ taskId: t.task_id, from: t.state })),
  };
}

export type ClearResult =
  | { outcome: 'no_run' }
  | { outcome: 'run_not_started' }
  | { outcome: 'busy'; tasks: Array<{ taskId: string; state: TaskState }> }
  | {
      outcome: 'cleared';
      previousRunState: RunState;
      runState: RunState;
      tasks: Array<{ taskId: string; from: TaskState; tryNumber: number }>;
    };

/**
 * Puts the given tasks of a run back to 'none' so the scheduler runs them again: their try history stays
 * (task_tries; the next try number continues from the last), their retries start afresh, and a run that
 * had ended is running again. Refuses (changing nothing) when one of them is queued or running.
 */
export async function clearTasks(
  c: pg.ClientBase,
  runId: string,
  taskIds: string[],
  eventsChannel: string,
): Promise<ClearResult> {
  const run = (
    await c.query<{ state: RunState }>(`SELECT state FROM dag_runs WHERE run_id = $1 FOR UPDATE`, [runId])
  ).rows[0];
  if (!run) return { outcome: 'no_run' };
  if (run.state === 'queued') return { outcome: 'run_not_started' };
  // With a mapped task, its items (`<task>[<index>]`): they go, and its next list makes them anew.
  const locked = (
    await c.query<{ task_id: string; state: TaskState; try_number: number }>(
      `SELECT task_id, state, try_number FROM task_instances
       WHERE run_id = $1 AND (task_id = ANY($2) OR (task_id LIKE '%]' AND split_part(task_id, '[', 1) = ANY($2)))
       ORDER BY task_id FOR UPDATE`,
      [runId, taskIds],
    )
  ).rows;
  const busy = locked.filter((t) => t.state === 'queued' || t.state === 'running');
  if (busy.length > 0) {
    return { outcome: 'busy', tasks: busy.map((t) => ({ taskId: t.task_id, state: t.state })) };
  }
  // Their tries and logs stay: an item made again goes on from its last try number (expandMapped).
  await c.query(
    `DELETE FROM task_instances
     WHERE run_id = $1 AND task_id LIKE '%]' AND split_part(task_id, '[', 1) = ANY($2)
       AND NOT (task_id = ANY($2)) AND state NOT IN ('queued', 'running')`,
    [runId, taskIds],
  );
  await c.query(
    `UPDATE task_instances SET state = 'none', failed_tries = 0, lost_tries = 0, claim_token = NULL,
       worker_id = NULL, next_retry_at = NULL, queued_at = NULL, started_at = NULL, ended_at = NULL,
       exit_code = NULL, output = NULL, error = NULL
     WHERE run_id = $1 AND task_id = ANY($2) AND state NOT IN ('queued', 'running')`,
    [runId, taskIds],
  );
  // As in Airflow, a re-opened run starts its clock again (its run timeout counts from now). A running run's
  // row is updated too: a worker ending the run on what it read of its tasks before this commit
  // (endRunsIfOver) sees the row changed and leaves the run to the schedulers.
  const reopen = ['success', 'failed', 'cancelled'].includes(run.state);
  await c.query(
    `UPDATE dag_runs SET state = 'running', ended_at = NULL, error = NULL,
       started_at = CASE WHEN $2 THEN now() ELSE started_at END
     WHERE run_id = $1`,
    [runId, reopen],
  );
  // The payload is the run id: the schedulers look at this run in their next pass.
  await c.query(`SELECT pg_notify($1, $2::text)`, [eventsChannel, runId]);
  return {
    outcome: 'cleared',
    previousRunState: run.state,
    runState: 'running',
    tasks: locked
      .filter((t) => taskIds.includes(t.task_id))
      .map((t) => ({ taskId: t.task_id, from: t.state, tryNumber: t.try_number })),
  };
}
