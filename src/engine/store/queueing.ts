/**
 * Queueing task instances: the next try queued with its message in the outbox in one statement, task slots
 * of limited DAGs locked while they are handed out, tasks that will never run settled, run callbacks queued.
 * Every state change is conditional on the state it expects.
 */
import { prepared, type Queryable } from './db.js';
import type { OutboxRow } from './outbox.js';

export interface QueueRequest {
  runId: string;
  taskId: string;
  from: 'none' | 'up_for_retry';
}

/**
 * Free task slots of those DAGs that set max_active_tasks: the limit minus their task instances queued
 * or running, across all runs. The DAG rows are locked (in id order) until the transaction ends, so two
 * schedulers cannot hand out the same slot. DAGs without a limit are absent from the result.
 */
export async function lockTaskSlots(q: Queryable, dagIds: string[]): Promise<Map<string, number>> {
  if (dagIds.length === 0) return new Map();
  const limited = (
    await q.query<{ dag_id: string; max_active_tasks: number }>(
      `SELECT dag_id, max_active_tasks FROM dags
       WHERE dag_id = ANY($1) AND max_active_tasks IS NOT NULL ORDER BY dag_id FOR UPDATE`,
      [dagIds],
    )
  ).rows;
  if (limited.length === 0) return new Map();
  // Counted after the lock, in a statement of its own: it sees what the previous holder committed.
  const active = new Map(
    (
      await q.query<{ dag_id: string; n: number }>(
        `SELECT r.dag_id, count(*)::int AS n FROM task_instances t JOIN dag_runs r ON r.run_id = t.run_id
         WHERE r.dag_id = ANY($1) AND t.state IN ('queued', 'running') GROUP BY r.dag_id`,
        [limited.map((d) => d.dag_id)],
      )
    ).rows.map((r) => [r.dag_id, r.n]),
  );
  return new Map(
    limited.map((d) => [d.dag_id, Math.max(0, d.max_active_tasks - (active.get(d.dag_id) ?? 0))]),
  );
}

/** Moves tasks to 'queued' (next try) and writes their messages to the outbox, in one statement. */
export async function queueTasks(q: Queryable, reqs: QueueRequest[]): Promise<OutboxRow[]> {
  if (reqs.length === 0) return [];
  return (
    await q.query<OutboxRow>(
      prepared(
        'queue_tasks',
        `WITH q AS (
         UPDATE task_instances t SET state = 'queued', try_number = t.try_number + 1, queued_at = now(),
           enqueued_at = now(), requeues = 0, next_retry_at = NULL, claim_token = NULL, worker_id = NULL, started_at = NULL, ended_at = NULL,
           exit_code = NULL, error = NULL
         FROM unnest($1::text[], $2::text[], $3::text[]) AS x(run_id, task_id, from_state)
         WHERE t.run_id = x.run_id AND t.task_id = x.task_id AND t.state = x.from_state
         RETURNING t.run_id, t.task_id, t.try_number, t.queue, t.priority)
       INSERT INTO outbox (queue, priority, payload)
       SELECT queue, priority, jsonb_build_object('runId', run_id, 'taskId', task_id, 'tryNumber', try_number)
       FROM q RETURNING id, queue, priority, payload`,
      ),
      [reqs.map((r) => r.runId), reqs.map((r) => r.taskId), reqs.map((r) => r.from)],
    )
  ).rows;
}

/** Sets tasks that never ran to skipped / upstream_failed. */
export async function settleUnrun(
  q: Queryable,
  items: Array<{ runId: string; taskId: string; state: 'skipped' | 'upstream_failed' }>,
) {
  if (items.length === 0) return;
  await q.query(
    `UPDATE task_instances t SET state = x.state, ended_at = now()
     FROM unnest($1::text[], $2::text[], $3::text[]) AS x(run_id, task_id, state)
     WHERE t.run_id = x.run_id AND t.task_id = x.task_id AND t.state = 'none'`,
    [items.map((i) => i.runId), items.map((i) => i.taskId), items.map((i) => i.state)],
  );
}

/**
 * Queues a run callback (@onRunSuccess / @onRunFailure) of a run that has just ended, with its message in
 * the outbox: a task instance of its own, so a worker runs it and its log and outcome are kept like a task's.
 * Call in the transaction that ends the run.
 */
export async function queueRunCallback(
  q: Queryable,
  runId: string,
  taskId: string,
  queue: string,
): Promise<OutboxRow[]> {
  return (
    await q.query<OutboxRow>(
      `WITH ti AS (
         INSERT INTO task_instances (run_id, task_id, state, queue, priority, try_number, queued_at)
         VALUES ($1, $2, 'queued', $3, 1, 1, now()) ON CONFLICT DO NOTHING
         RETURNING run_id, task_id, try_number, queue, priority)
       INSERT INTO outbox (queue, priority, payload)
       SELECT queue, priority, jsonb_build_object('runId', run_id, 'taskId', task_id, 'tryNumber', try_number)
       FROM ti RETURNING id, queue, priority, payload`,
      [runId, taskId, queue],
    )
  ).rows;
}
