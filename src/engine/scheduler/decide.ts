/**
 * What the scheduler should do next for one run, as a pure function of the DAG and its task states.
 * Follows Airflow's trigger-rule semantics so that upstream_failed and skipped propagate as its users expect.
 */
import type { SerializedDag, SerializedTask, TriggerRule } from '../../core/dag-model.js';
import { BRANCH_OPERATOR, branchChoice } from '../dag/branch.js';
import { itemIds } from '../dag/mapped.js';
import { topologicalOrder } from '../dag/validate.js';
import type { RunState } from '../../core/states.js';
import type { TaskState } from '../../core/states.js';

export interface TaskStateBrief {
  state: TaskState;
  nextRetryAt: Date | null;
  /** The stored output; needed only for branch tasks (the ids of the downstream tasks they chose). */
  output?: unknown;
  /** For a mapped task's own row: how many items its stored list has (null: no list). */
  itemCount?: number | null;
}

export interface Decision {
  /** Tasks to queue now, and the state they leave. */
  queue: Array<{ taskId: string; from: 'none' | 'up_for_retry' }>;
  /** Tasks that will never run. */
  settle: Array<{ taskId: string; state: 'skipped' | 'upstream_failed' }>;
  /**
   * Mapped tasks whose list is stored but whose item rows are not all made (an empty list: the task is
   * skipped). Their rows are to be made before `queue` is applied: it may name those items.
   */
  expand: string[];
  /** Set when every task is finished: the run's final state. */
  runState: Extract<RunState, 'success' | 'failed'> | null;
}

export interface Counts {
  total: number;
  success: number;
  failed: number; // failed, upstream_failed or cancelled
  skipped: number;
  done: number;
}

const FINISHED: ReadonlySet<TaskState> = new Set([
  'success',
  'failed',
  'upstream_failed',
  'skipped',
  'cancelled',
]);

export function decide(dag: SerializedDag, states: Map<string, TaskStateBrief>, now: Date): Decision {
  const tasks = new Map(dag.tasks.map((t) => [t.taskId, t]));
  // Effective states: decisions made in this pass count for the tasks after them.
  const eff = new Map<string, TaskState>();
  for (const t of dag.tasks) eff.set(t.taskId, states.get(t.taskId)?.state ?? 'none');
  const out: Decision = { queue: [], settle: [], expand: [], runState: null };
  // The items of each expanded mapped task: downstream trigger rules count them, not the task's own row.
  const items = new Map<string, string[]>();

  for (const id of topologicalOrder(dag.tasks)) {
    const task = tasks.get(id)!;
    const st = eff.get(id)!;
    if (task.map && st === 'success') {
      decideItems(task, states, eff, items, out, now);
      continue;
    }
    if (st === 'up_for_retry') {
      const due = states.get(id)?.nextRetryAt;
      if (!due || due <= now) out.queue.push({ taskId: id, from: 'up_for_retry' });
      continue;
    }
    if (st !== 'none') continue;
    // A branch that succeeded without choosing this task skips it, whatever its trigger rule (as in Airflow).
    if (notChosenByBranch(task, tasks, eff, states)) {
      out.settle.push({ taskId: id, state: 'skipped' });
      eff.set(id, 'skipped');
      continue;
    }
    const upstream = items.size === 0 ? task.upstream : task.upstream.flatMap((u) => items.get(u) ?? [u]);
    const verdict = evaluate(task.triggerRule, countUpstream(upstream, eff));
    if (verdict === 'run') {
      out.queue.push({ taskId: id, from: 'none' });
      eff.set(id, 'queued');
    } else if (verdict !== 'wait') {
      out.settle.push({ taskId: id, state: verdict });
      eff.set(id, verdict);
    }
  }

  if ([...eff.values()].every((s) => FINISHED.has(s))) out.runState = runOutcome(dag, eff);
  return out;
}

/**
 * A mapped task whose own row stored its list: its items are made if they are not yet, queued (those not
 * run yet or due for a retry, in item order, up to maxActiveItems at once), and the task counts for the
 * run's outcome as their set: unfinished while one is, failed if one failed, skipped with no items.
 */
function decideItems(
  task: SerializedTask,
  states: Map<string, TaskStateBrief>,
  eff: Map<string, TaskState>,
  items: Map<string, string[]>,
  out: Decision,
  now: Date,
) {
  const n = states.get(task.taskId)?.itemCount ?? 0;
  if (n === 0) {
    out.expand.push(task.taskId);
    eff.set(task.taskId, 'skipped');
    return;
  }
  const ids = itemIds(task.taskId, n);
  items.set(task.taskId, ids);
  let active = 0;
  let missing = false;
  for (const i of ids) {
    const s = states.get(i)?.state;
    if (s === undefined) missing = true;
    else if (s === 'queued' || s === 'running') active++;
  }
  if (missing) out.expand.push(task.taskId);
  let room = (task.map!.maxActiveItems ?? Infinity) - active;
  let failed = false;
  let unfinished = false;
  let allSkipped = true;
  for (const i of ids) {
    const b = states.get(i);
    let s: TaskState = b?.state ?? 'none';
    const ready = s === 'none' || (s === 'up_for_retry' && (!b?.nextRetryAt || b.nextRetryAt <= now));
    if (ready && room > 0) {
      out.queue.push({ taskId: i, from: s as 'none' | 'up_for_retry' });
      room--;
      s = 'queued';
    }
    eff.set(i, s);
    if (!FINISHED.has(s)) unfinished = true;
    else if (s === 'failed' || s === 'upstream_failed' || s === 'cancelled') failed = true;
    if (s !== 'skipped') allSkipped = false;
  }
  eff.set(task.taskId, unfinished ? 'running' : failed ? 'failed' : allSkipped ? 'skipped' : 'success');
}

function notChosenByBranch(
  task: SerializedTask,
  tasks: Map<string, SerializedTask>,
  eff: Map<string, TaskState>,
  states: Map<string, TaskStateBrief>,
): boolean {
  return task.upstream.some(
    (up) =>
      tasks.get(up)?.operator === BRANCH_OPERATOR &&
      eff.get(up) === 'success' &&
      !branchChoice(states.get(up)?.output).includes(task.taskId),
  );
}

/** The counts trigger rules read, over the states of a task's upstream tasks. */
export function countUpstream(upstream: readonly string[], states: ReadonlyMap<string, TaskState>): Counts {
  const c: Counts = { total: upstream.length, success: 0, failed: 0, skipped: 0, done: 0 };
  for (const up of upstream) {
    const s = states.get(up);
    if (s === 'success') c.success++;
    else if (s === 'failed' || s === 'upstream_failed' || s === 'cancelled') c.failed++;
    else if (s === 'skipped') c.skipped++;
    if (s && FINISHED.has(s)) c.done++;
  }
  return c;
}

export type Verdict = 'run' | 'wait' | 'skipped' | 'upstream_failed';

/** Airflow's trigger rules over the counts of upstream states. */
export function evaluate(rule: TriggerRule, c: Counts): Verdict {
  // Like Airflow, a task with no upstream runs whatever its rule (otherwise one_success would skip a root).
  if (c.total === 0) return 'run';
  const allDone = c.done === c.total;
  switch (rule) {
    case 'always':
      return 'run';
    case 'all_success':
      if (c.failed > 0) return 'upstream_failed';
      if (c.skipped > 0) return 'skipped';
      return c.success === c.total ? 'run' : 'wait';
    case 'all_failed':
      if (c.success > 0 || c.skipped > 0) return 'skipped';
      return c.failed === c.total ? 'run' : 'wait';
    case 'all_done':
      return allDone ? 'run' : 'wait';
    case 'one_success':
      if (c.success > 0) return 'run';
      if (!allDone) return 'wait';
      return c.failed > 0 ? 'upstream_failed' : 'skipped';
    case 'one_failed':
      if (c.failed > 0) return 'run';
      return allDone ? 'skipped' : 'wait';
    case 'none_failed':
      if (c.failed > 0) return 'upstream_failed';
      return allDone ? 'run' : 'wait';
    case 'none_failed_min_one_success':
      if (c.failed > 0) return 'upstream_failed';
      if (!allDone) return 'wait';
      return c.success > 0 ? 'run' : 'skipped';
    case 'none_skipped':
      if (c.skipped > 0) return 'skipped';
      return allDone ? 'run' : 'wait';
  }
}

/** Airflow's rule: a run succeeds when every leaf task succeeded or was skipped. */
function runOutcome(dag: SerializedDag, eff: Map<string, TaskState>): 'success' | 'failed' {
  const hasDownstream = new Set(dag.tasks.flatMap((t) => t.upstream));
  const leaves = dag.tasks.filter((t) => !hasDownstream.has(t.taskId));
  return leaves.every((t) => ['success', 'skipped'].includes(eff.get(t.taskId)!)) ? 'success' : 'failed';
}

/** How long after a failed try the next one may start; null when the task has no retries left. */
export function retryDelayMs(task: SerializedTask, failedTriesSoFar: number): number | null {
  const failures = failedTriesSoFar + 1;
  if (failures > task.retries) return null;
  const factor = task.retryExponentialBackoff ? 2 ** (failures - 1) : 1;
  return Math.min(task.retryDelayMs * factor, task.maxRetryDelayMs);
}

/** When the next try of a failed task may start; null when it has no retries left. */
export function nextRetry(task: SerializedTask, failedTriesSoFar: number, now: Date): Date | null {
  const delay = retryDelayMs(task, failedTriesSoFar);
  return delay === null ? null : new Date(now.getTime() + delay);
}
