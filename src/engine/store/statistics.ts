/** The planner's statistics, kept fresh enough for the prepared statements' generic plans. */
import type { Queryable } from './db.js';

/** Fewer new task instances than this never call for a refresh. */
export const STATISTICS_GROWTH = 1000;

/**
 * Brings the planner's statistics of task_instances and dag_runs up to date after `created` new task
 * instances, when they are many against what the statistics know (a new installation, or a run of 20,000
 * tasks on a small table). The prepared statements' plans are made once per connection (see Prepared): one
 * made while the table was nearly empty scans it whole, and stays until the statistics change. Autovacuum
 * gets there too, but only within a minute or so; ANALYZE also invalidates those plans at once. Returns
 * whether it ran.
 */
export async function refreshStatisticsAfterGrowth(q: Queryable, created: number): Promise<boolean> {
  if (created < STATISTICS_GROWTH) return false;
  const r = await q.query<{ known: number }>(
    `SELECT greatest(reltuples, 0)::float8 AS known FROM pg_class WHERE oid = 'task_instances'::regclass`,
  );
  if (created < 0.2 * (r.rows[0]?.known ?? 0)) return false;
  await q.query('ANALYZE task_instances, dag_runs');
  return true;
}
