/** How much work each queue holds: what `status` and the autoscaler compare with the workers. */
import type { Queryable } from './db.js';

/** How many task instances of each queue are running: the work the autoscaler must not take workers from. */
export async function runningByQueue(q: Queryable): Promise<Map<string, number>> {
  const r = await q.query<{ queue: string; n: number }>(
    `SELECT queue, count(*)::int AS n FROM task_instances WHERE state = 'running' GROUP BY queue`,
  );
  return new Map(r.rows.map((x) => [x.queue, x.n]));
}

/** How many task instances wait in each queue (state 'queued'): what `airtasks status` compares with its workers. */
export async function queuedByQueue(q: Queryable): Promise<Map<string, number>> {
  const r = await q.query<{ queue: string; n: number }>(
    `SELECT queue, count(*)::int AS n FROM task_instances WHERE state = 'queued' GROUP BY queue`,
  );
  return new Map(r.rows.map((x) => [x.queue, x.n]));
}
