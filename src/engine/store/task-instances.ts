/** Task instances and their tries as rows: creating them with their run, and reading them. */
import type { SerializedTask } from '../../core/dag-model.js';
import type { TaskState } from '../../core/states.js';
import { prepared, type Queryable } from './db.js';
import { mappedOutputs } from './mapped-items.js';

export interface TaskInstanceRow {
  run_id: string;
  task_id: string;
  state: TaskState;
  queue: string;
  priority: number;
  try_number: number;
  failed_tries: number;
  lost_tries: number;
  /** When the current try's message last went to the broker (see migration 0005). */
  enqueued_at: Date | null;
  /** How often the current try's message was re-sent because it was lost. */
  requeues: number;
  claim_token: string | null;
  worker_id: string | null;
  next_retry_at: Date | null;
  queued_at: Date | null;
  started_at: Date | null;
  ended_at: Date | null;
  exit_code: number | null;
  output: unknown;
  error: string | null;
}

/**
 * The fields the scheduler decides on; `output` only for the branch tasks asked for, `item_count` (the length
 * of the list a mapped task's row stored) only for the mapped tasks asked for.
 */
export type TaskInstanceBrief = Pick<
  TaskInstanceRow,
  'run_id' | 'task_id' | 'state' | 'try_number' | 'failed_tries' | 'next_retry_at' | 'output'
> & { item_count: number | null };

export async function createTaskInstances(q: Queryable, runId: string, tasks: SerializedTask[]) {
  await createTaskInstancesOfRuns(q, [{ runId, tasks }]);
}

/** Creates the task instances of several runs in one statement (a scheduler starting many small runs). */
export async function createTaskInstancesOfRuns(
  q: Queryable,
  runs: Array<{ runId: string; tasks: SerializedTask[] }>,
) {
  const all = runs.flatMap((r) => r.tasks.map((t) => ({ runId: r.runId, t })));
  if (all.length === 0) return;
  await q.query(
    `INSERT INTO task_instances (run_id, task_id, state, queue, priority, pool, pool_slots)
     SELECT t.run_id, t.task_id, 'none', t.queue, t.priority, t.pool, t.pool_slots
     FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::int[])
       AS t(run_id, task_id, queue, priority, pool, pool_slots)
     ON CONFLICT DO NOTHING`,
    [
      all.map((x) => x.runId),
      all.map((x) => x.t.taskId),
      all.map((x) => x.t.queue),
      all.map((x) => x.t.priorityWeight),
      all.map((x) => x.t.pool ?? null),
      all.map((x) => x.t.poolSlots ?? 1),
    ],
  );
}

/**
 * Briefs of every task of the runs (items of mapped tasks included); outputs are read only for `withOutput`
 * tasks (branch choices), list lengths only for `mapped` tasks.
 */
export async function briefsForRuns(
  q: Queryable,
  runIds: string[],
  withOutput: string[] = [],
  mapped: string[] = [],
): Promise<TaskInstanceBrief[]> {
  return (
    await q.query<TaskInstanceBrief>(
      `SELECT run_id, task_id, state, try_number, failed_tries, next_retry_at,
              CASE WHEN task_id = ANY($2) THEN output END AS output,
              CASE WHEN task_id = ANY($3) AND jsonb_typeof(output) = 'array'
                THEN jsonb_array_length(output) END AS item_count
       FROM task_instances WHERE run_id = ANY($1)`,
      [runIds, withOutput, mapped],
    )
  ).rows;
}

/** The states of some tasks of a run. */
export async function statesOf(
  q: Queryable,
  runId: string,
  taskIds: string[],
): Promise<Map<string, TaskState>> {
  const r = await q.query<{ task_id: string; state: TaskState }>(
    prepared(
      'states_of',
      `SELECT task_id, state FROM task_instances WHERE run_id = $1 AND task_id = ANY($2)`,
    ),
    [runId, taskIds],
  );
  return new Map(r.rows.map((x) => [x.task_id, x.state]));
}

export async function listTaskInstances(q: Queryable, runId: string): Promise<TaskInstanceRow[]> {
  return (
    await q.query<TaskInstanceRow>(
      `SELECT * FROM task_instances WHERE run_id = $1 ORDER BY started_at NULLS LAST, task_id`,
      [runId],
    )
  ).rows;
}

export async function getTaskInstance(q: Queryable, runId: string, taskId: string) {
  return (
    await q.query<TaskInstanceRow>(`SELECT * FROM task_instances WHERE run_id = $1 AND task_id = $2`, [
      runId,
      taskId,
    ])
  ).rows[0];
}

export interface TryRow {
  run_id: string;
  task_id: string;
  try_number: number;
  state: string;
  worker_id: string | null;
  started_at: Date | null;
  ended_at: Date | null;
  exit_code: number | null;
  error: string | null;
  /** When its process really ended, when that was after ended_at (see recordLateEnds). */
  process_ended_at: Date | null;
}

export async function listTries(q: Queryable, runId: string, taskId?: string): Promise<TryRow[]> {
  return (
    await q.query<TryRow>(
      `SELECT * FROM task_tries WHERE run_id = $1 AND ($2::text IS NULL OR task_id = $2) ORDER BY task_id, try_number`,
      [runId, taskId ?? null],
    )
  ).rows;
}

/**
 * Outputs of the given tasks of a run (successful ones only); those of `mapped` tasks are their items'
 * outputs as a list, in item order (mappedOutputs).
 */
export async function outputsOf(
  q: Queryable,
  runId: string,
  taskIds: string[],
  mapped: string[] = [],
): Promise<Map<string, unknown>> {
  if (taskIds.length === 0) return new Map();
  const plain = mapped.length === 0 ? taskIds : taskIds.filter((t) => !mapped.includes(t));
  const r = await q.query<{ task_id: string; output: unknown }>(
    `SELECT task_id, output FROM task_instances WHERE run_id = $1 AND task_id = ANY($2) AND state = 'success'`,
    [runId, plain],
  );
  const out = new Map<string, unknown>(r.rows.map((x) => [x.task_id, x.output]));
  for (const [id, list] of await mappedOutputs(q, runId, mapped)) out.set(id, list);
  return out;
}
