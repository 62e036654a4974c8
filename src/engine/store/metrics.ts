/** What the cluster gauges of /metrics read on a scrape: a few grouped counts, each on an index. */
import type { Queryable } from './db.js';

/** How many runs are in each state. */
export async function runsByState(q: Queryable): Promise<Array<{ state: string; n: number }>> {
  return (
    await q.query<{ state: string; n: number }>(
      `SELECT state, count(*)::int AS n FROM dag_runs GROUP BY state ORDER BY state`,
    )
  ).rows;
}

/** Task instances queued or running, by queue (the unfinished-tasks index covers them). */
export async function activeTasksByQueue(
  q: Queryable,
): Promise<Array<{ queue: string; state: 'queued' | 'running'; n: number }>> {
  return (
    await q.query<{ queue: string; state: 'queued' | 'running'; n: number }>(
      `SELECT queue, state, count(*)::int AS n FROM task_instances
       WHERE state IN ('queued', 'running') GROUP BY queue, state ORDER BY queue, state`,
    )
  ).rows;
}
