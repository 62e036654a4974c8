/**
 * The items of mapped tasks as task instance rows (see engine/dag/mapped.ts): made from the list their
 * task's own row stored as its output, and their outputs gathered, in item order, for downstream tasks.
 */
import type { Queryable } from './db.js';

/** The index of an item row's id (`<task>[<index>]`), in SQL. */
const ITEM_INDEX = `(substring(i.task_id FROM '\\[(\\d+)\\]$'))::int`;

/**
 * Makes the item rows of mapped tasks whose own row succeeded with a list as its output: one per item, with
 * the mapped task's queue, priority and pool, and a try number that goes on from tries an item of that id
 * had before (its task was cleared), so their records stay apart. An empty list skips the task. Conditional
 * on the task's row still being that success, and rows that exist are left alone.
 */
export async function expandMapped(q: Queryable, reqs: Array<{ runId: string; taskId: string }>) {
  if (reqs.length === 0) return;
  const params = [reqs.map((r) => r.runId), reqs.map((r) => r.taskId)];
  await q.query(
    `INSERT INTO task_instances (run_id, task_id, state, queue, priority, pool, pool_slots, map_item, try_number)
     SELECT p.run_id, p.task_id || '[' || (e.n - 1) || ']', 'none', p.queue, p.priority, p.pool, p.pool_slots,
            e.v, coalesce((SELECT max(tt.try_number) FROM task_tries tt
                           WHERE tt.run_id = p.run_id AND tt.task_id = p.task_id || '[' || (e.n - 1) || ']'), 0)
     FROM unnest($1::text[], $2::text[]) AS x(run_id, task_id)
     JOIN task_instances p ON p.run_id = x.run_id AND p.task_id = x.task_id
       AND p.state = 'success' AND jsonb_typeof(p.output) = 'array'
     CROSS JOIN LATERAL jsonb_array_elements(p.output) WITH ORDINALITY AS e(v, n)
     ON CONFLICT DO NOTHING`,
    params,
  );
  await q.query(
    `UPDATE task_instances t SET state = 'skipped'
     FROM unnest($1::text[], $2::text[]) AS x(run_id, task_id)
     WHERE t.run_id = x.run_id AND t.task_id = x.task_id AND t.state = 'success' AND t.output = '[]'::jsonb`,
    params,
  );
}

/**
 * The outputs of mapped tasks of a run, each the list of its items' outputs in item order (null for an
 * item that did not succeed); a mapped task with no items (skipped) gives an empty list.
 */
export async function mappedOutputs(
  q: Queryable,
  runId: string,
  taskIds: string[],
): Promise<Map<string, unknown[]>> {
  if (taskIds.length === 0) return new Map();
  const r = await q.query<{ task_id: string; outputs: unknown[] }>(
    `SELECT x.task_id, coalesce((
       SELECT jsonb_agg(CASE WHEN i.state = 'success' THEN i.output END ORDER BY ${ITEM_INDEX})
       FROM task_instances i WHERE i.run_id = $1 AND starts_with(i.task_id, x.task_id || '[')), '[]') AS outputs
     FROM unnest($2::text[]) AS x(task_id)`,
    [runId, taskIds],
  );
  return new Map(r.rows.map((x) => [x.task_id, x.outputs]));
}

/** The item an item row holds (null when the row is gone). */
export async function itemOf(q: Queryable, runId: string, taskId: string): Promise<unknown> {
  const r = await q.query<{ map_item: unknown }>(
    `SELECT map_item FROM task_instances WHERE run_id = $1 AND task_id = $2`,
    [runId, taskId],
  );
  return r.rows[0]?.map_item ?? null;
}
