/**
 * What the scheduler should do next for one run, as a pure function of the DAG and its task states.
 * Follows Airflow's trigger-rule semantics so that upstream_failed and skipped propagate as its users expect.
 */
import type { SerializedDag, SerializedTask, TriggerRule } from '../../core/dag-model.js';
import { BRANCH_OPERATOR, branchChoice } from '../dag/branch.js';
import { topologicalOrder } from '../dag/validate.js';
import type { RunState } from '../../core/states.js';
import type { TaskState } from '../../core/states.js';

export interface TaskStateBrief {
  state: TaskState;
  nextRetryAt: Date | null;
  /** The stored output; needed only for branch tasks (the ids of the downstream tasks they chose). */
  output?: unknown;
}

export interface Decision {
  /** Tasks to queue now, and the state they leave. */
  queue: Array<{ taskId: string; from: 'none' | 'up_for_retry' }>;
  /** Tasks that will never run. */
  settle: Array<{ taskId: string; state: 'skipped' | 'upstream_failed' }>;
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
  const out: Decision = { queue: [], settle: [], runState: null };

  for (const id of topologicalOrder(dag.tasks)) {
    const task = tasks.get(id)!;
    const st = eff.get(id)!;
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
    const verdict = evaluate(task.triggerRule, count(task, eff));
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

function count(task: SerializedTask, eff: Map<string, TaskState>): Counts {
  return countUpstream(task.upstream, eff);
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
