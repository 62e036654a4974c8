/**
 * What a worker decides itself when a task succeeds: the downstream tasks it can queue in the result's own
 * transaction, instead of a scheduler pass (a notification, a run lock, a read of every task of the run,
 * then a publish). Only decisions that need no scheduler judgement: no pools or DAG task limits (their
 * slots are counted under the scheduler's locks) and no branches (their choice is in outputs); a verdict
 * other than run or wait (skipped, upstream_failed) is left to the scheduler, as is a run another process
 * holds. The rules are the scheduler's own (decide.ts), so both reach the same decision.
 */
import { BRANCH_OPERATOR } from '../dag/branch.js';
import type { SerializedDag, SerializedTask } from '../../core/dag-model.js';
import { taskOf } from '../dag/versions.js';
import { countUpstream, evaluate } from '../scheduler/decide.js';
import { UNFINISHED_TASK_STATES, type TaskState } from '../../core/states.js';

export type SuccessorPlan =
  /** The scheduler must look at the run (pools, task limits, branches). */
  | { kind: 'scheduler' }
  /**
   * No downstream task: the run may be over, which the worker checks cheaply. `only`: the DAG's one leaf,
   * whose success is all but always the run's end (of several leaves, the first to end seldom is).
   */
  | { kind: 'leaf'; only: boolean }
  /**
   * Every downstream task waits for this task alone, and its trigger rule runs it on this success: they are
   * queued (one claimed, to run next in the slot) by the statement that stores the result. No other result
   * can change that verdict, so no run lock and no read of states is needed.
   */
  | { kind: 'direct'; downstream: SerializedTask[] }
  /** Judge these downstream tasks from the states of `read` (them and their upstream tasks). */
  | { kind: 'downstream'; downstream: SerializedTask[]; read: string[] };

export interface Judgement {
  /** Tasks to queue now (state none, verdict run). */
  queue: string[];
  /** Some task needs the scheduler's judgement. */
  scheduler: boolean;
  /** Some downstream task is still to run or running: the run cannot be over. */
  unfinished: boolean;
}

const plans = new WeakMap<SerializedDag, Map<string, SuccessorPlan>>();
const downstreams = new WeakMap<SerializedDag, Map<string, SerializedTask[]>>();

/** Each task's downstream tasks, built once per DAG version. */
function downstreamOf(dag: SerializedDag): Map<string, SerializedTask[]> {
  let m = downstreams.get(dag);
  if (!m) {
    downstreams.set(dag, (m = new Map()));
    for (const t of dag.tasks)
      for (const u of t.upstream) {
        let list = m.get(u);
        if (!list) m.set(u, (list = []));
        list.push(t);
      }
  }
  return m;
}

/** The plan for a task's success; computed once per DAG version and task. */
export function successorPlan(dag: SerializedDag, task: SerializedTask): SuccessorPlan {
  let byTask = plans.get(dag);
  if (!byTask) plans.set(dag, (byTask = new Map()));
  let plan = byTask.get(task.taskId);
  if (!plan) byTask.set(task.taskId, (plan = makePlan(dag, task)));
  return plan;
}

function makePlan(dag: SerializedDag, task: SerializedTask): SuccessorPlan {
  // A mapped task's list and its items are the scheduler's to judge (it makes the items, counts them).
  if (dag.maxActiveTasks !== undefined || task.pool || task.operator === BRANCH_OPERATOR || task.map)
    return { kind: 'scheduler' };
  const downstreams = downstreamOf(dag);
  const downstream = downstreams.get(task.taskId) ?? [];
  // Counted once per DAG version: a scan per leaf would cost a 10,000-task tree some 25 million steps.
  if (downstream.length === 0) return { kind: 'leaf', only: dag.tasks.length - downstreams.size === 1 };
  const judgedUpstream = (t: SerializedTask) =>
    t.upstream.some((u) => {
      const up = taskOf(dag, u);
      return up?.operator === BRANCH_OPERATOR || up?.map !== undefined;
    });
  if (downstream.some((t) => t.pool || judgedUpstream(t))) return { kind: 'scheduler' };
  const succeeded = new Map<string, TaskState>([[task.taskId, 'success']]);
  const direct = (t: SerializedTask) =>
    t.upstream.length === 1 && evaluate(t.triggerRule, countUpstream(t.upstream, succeeded)) === 'run';
  if (downstream.every(direct)) return { kind: 'direct', downstream };
  const read = new Set<string>();
  for (const t of downstream) {
    read.add(t.taskId);
    for (const u of t.upstream) read.add(u);
  }
  return { kind: 'downstream', downstream, read: [...read] };
}

const UNFINISHED: ReadonlySet<TaskState> = new Set(UNFINISHED_TASK_STATES);

/** Judges the downstream tasks from the states read in the result's transaction (with the run locked). */
export function judge(downstream: SerializedTask[], states: ReadonlyMap<string, TaskState>): Judgement {
  const out: Judgement = { queue: [], scheduler: false, unfinished: false };
  for (const t of downstream) {
    const st = states.get(t.taskId);
    if (st === undefined) {
      out.scheduler = true;
      continue;
    }
    if (st !== 'none') {
      if (UNFINISHED.has(st)) out.unfinished = true;
      continue;
    }
    const verdict = evaluate(t.triggerRule, countUpstream(t.upstream, states));
    if (verdict === 'run') out.queue.push(t.taskId);
    else if (verdict !== 'wait') out.scheduler = true;
    out.unfinished = true;
  }
  return out;
}
