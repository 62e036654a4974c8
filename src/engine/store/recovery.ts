/**
 * What the safety nets look for: tries of workers that stopped heartbeating, queued tries whose message was
 * lost, and claims a worker holds without knowing. Every change is conditional, so two schedulers agree.
 */
import type { TaskMessage } from '../../core/states.js';
import type { Queryable } from './db.js';
import type { OutboxRow } from './outbox.js';

export interface RunningTask extends TaskMessage {
  token: string;
  dagHash: string;
  failedTries: number;
  lostTries: number;
  workerId: string | null;
}

/** Running tasks whose worker stopped heartbeating (or stopped): their tries are lost. */
export async function findZombies(q: Queryable, thresholdMs: number): Promise<RunningTask[]> {
  const r = await q.query<{
    run_id: string;
    task_id: string;
    try_number: number;
    claim_token: string;
    dag_hash: string;
    failed_tries: number;
    lost_tries: number;
    worker_id: string | null;
  }>(
    `SELECT t.run_id, t.task_id, t.try_number, t.claim_token, r.dag_hash, t.failed_tries, t.lost_tries, t.worker_id
     FROM task_instances t JOIN dag_runs r USING (run_id) LEFT JOIN workers w USING (worker_id)
     WHERE t.state = 'running'
       AND (w.worker_id IS NULL OR w.stopped_at IS NOT NULL OR w.heartbeat_at < now() - make_interval(secs => $1))
     LIMIT 500`,
    [thresholdMs / 1000],
  );
  return r.rows.map((x) => ({
    runId: x.run_id,
    taskId: x.task_id,
    tryNumber: x.try_number,
    token: x.claim_token,
    dagHash: x.dag_hash,
    failedTries: x.failed_tries,
    lostTries: x.lost_tries,
    workerId: x.worker_id,
  }));
}

export interface StaleQueued extends TaskMessage {
  queue: string;
}

/**
 * Queued tries nobody claimed whose message went out more than `olderThanMs` ago and that have no
 * message waiting in the outbox: candidates for a lost message (the scheduler also checks the broker).
 */
export async function findStaleQueued(
  q: Queryable,
  olderThanMs: number,
  limit: number,
): Promise<StaleQueued[]> {
  const r = await q.query<{ run_id: string; task_id: string; try_number: number; queue: string }>(
    `SELECT t.run_id, t.task_id, t.try_number, t.queue FROM task_instances t
     WHERE t.state = 'queued' AND t.claim_token IS NULL
       AND coalesce(t.enqueued_at, t.queued_at) < now() - make_interval(secs => $1)
       AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.payload->>'runId' = t.run_id
                         AND o.payload->>'taskId' = t.task_id AND (o.payload->>'tryNumber')::int = t.try_number)
     ORDER BY coalesce(t.enqueued_at, t.queued_at) LIMIT $2`,
    [olderThanMs / 1000, limit],
  );
  return r.rows.map((x) => ({ runId: x.run_id, taskId: x.task_id, tryNumber: x.try_number, queue: x.queue }));
}

/**
 * Writes a new message to the outbox for each try that is still queued, unclaimed and stale, and marks it
 * sent now. Conditional, so two schedulers re-sending at once write one message, not two.
 */
export async function requeueStale(
  q: Queryable,
  items: TaskMessage[],
  olderThanMs: number,
): Promise<OutboxRow[]> {
  if (items.length === 0) return [];
  return (
    await q.query<OutboxRow>(
      `WITH r AS (
         UPDATE task_instances t SET enqueued_at = now(), requeues = t.requeues + 1
         FROM unnest($1::text[], $2::text[], $3::int[]) AS x(run_id, task_id, try_number)
         WHERE t.run_id = x.run_id AND t.task_id = x.task_id AND t.try_number = x.try_number
           AND t.state = 'queued' AND t.claim_token IS NULL
           AND coalesce(t.enqueued_at, t.queued_at) < now() - make_interval(secs => $4)
         RETURNING t.run_id, t.task_id, t.try_number, t.queue, t.priority)
       INSERT INTO outbox (queue, priority, payload)
       SELECT queue, priority, jsonb_build_object('runId', run_id, 'taskId', task_id, 'tryNumber', try_number)
       FROM r RETURNING id, queue, priority, payload`,
      [
        items.map((i) => i.runId),
        items.map((i) => i.taskId),
        items.map((i) => i.tryNumber),
        olderThanMs / 1000,
      ],
    )
  ).rows;
}

/** The tries this worker holds a claim on in the database, by its claim token. */
export async function runningClaims(
  q: Queryable,
  workerId: string,
): Promise<Array<TaskMessage & { token: string }>> {
  const r = await q.query<{ run_id: string; task_id: string; try_number: number; claim_token: string }>(
    `SELECT run_id, task_id, try_number, claim_token FROM task_instances WHERE worker_id = $1 AND state = 'running'`,
    [workerId],
  );
  return r.rows.map((x) => ({
    runId: x.run_id,
    taskId: x.task_id,
    tryNumber: x.try_number,
    token: x.claim_token,
  }));
}
