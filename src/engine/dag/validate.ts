/** Structural checks on a DAG: ids, unknown references, cycles. Pure functions over the serialised form. */
import { BRANCH_OPERATOR } from './branch.js';
import { TRIGGER_RULES, type SerializedDag, type SerializedTask } from '../../core/dag-model.js';
import { gpuRequestProblem } from '../../core/gpus.js';
import { keysAlikeButCase, variableKeyProblem } from '../../core/variable-keys.js';

export const ID_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$/;

export class DagValidationError extends Error {
  constructor(
    message: string,
    readonly dagId?: string,
  ) {
    super(message);
    this.name = 'DagValidationError';
  }
}

/** A DagValidationError about one task of a DAG being declared. */
export function taskError(dagId: string, taskId: string, message: string): DagValidationError {
  return new DagValidationError(`task "${taskId}" in DAG "${dagId}": ${message}`, dagId);
}

export function checkId(kind: 'DAG' | 'task' | 'queue' | 'pool', id: unknown): string {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw new DagValidationError(
      `invalid ${kind} id ${JSON.stringify(id)}: use 1-250 letters, digits, '_', '.' or '-', not starting with '.' or '-'`,
    );
  }
  return id;
}

/** Returns one cycle as a list of task ids (first id repeated at the end), or null. */
export function findCycle(
  tasks: ReadonlyArray<{ taskId: string; upstream: readonly string[] }>,
): string[] | null {
  const upstream = new Map(tasks.map((t) => [t.taskId, t.upstream]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | null => {
    const s = state.get(id);
    if (s === 'done') return null;
    if (s === 'visiting') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'visiting');
    stack.push(id);
    for (const up of upstream.get(id) ?? []) {
      const cycle = visit(up);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(id, 'done');
    return null;
  };
  for (const t of tasks) {
    const cycle = visit(t.taskId);
    // Walked along upstream edges, so reverse to read in execution order.
    if (cycle) return cycle.reverse();
  }
  return null;
}

/** Throws a DagValidationError naming every problem found. */
export function validateDag(d: SerializedDag): void {
  checkId('DAG', d.dagId);
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const t of d.tasks) {
    try {
      checkId('task', t.taskId);
      checkId('queue', t.queue);
    } catch (e) {
      problems.push((e as Error).message);
    }
    if (seen.has(t.taskId)) problems.push(`duplicate task id "${t.taskId}"`);
    seen.add(t.taskId);
    if (!TRIGGER_RULES.includes(t.triggerRule)) {
      problems.push(
        `task "${t.taskId}": unknown trigger rule "${t.triggerRule}" (one of ${TRIGGER_RULES.join(', ')})`,
      );
    }
    if (!Number.isInteger(t.retries) || t.retries < 0)
      problems.push(`task "${t.taskId}": retries must be an integer >= 0`);
    if (!Number.isInteger(t.priorityWeight))
      problems.push(`task "${t.taskId}": priorityWeight must be an integer`);
    if (t.pool !== undefined && !ID_PATTERN.test(t.pool))
      problems.push(`task "${t.taskId}": invalid pool name ${JSON.stringify(t.pool)}`);
    if (t.poolSlots !== undefined && !(Number.isInteger(t.poolSlots) && t.poolSlots >= 1))
      problems.push(`task "${t.taskId}": poolSlots must be an integer >= 1`);
    problems.push(...dockerVariableProblems(t));
    const gpus = t.operator === 'docker' ? t.args.gpus : t.gpus;
    const gpuProblem = gpus === undefined ? null : gpuRequestProblem(gpus);
    if (gpuProblem) problems.push(`task "${t.taskId}": ${gpuProblem}`);
  }
  for (const t of d.tasks) {
    for (const up of t.upstream) {
      if (!seen.has(up)) problems.push(`task "${t.taskId}" names unknown upstream task "${up}"`);
      if (up === t.taskId) problems.push(`task "${t.taskId}" depends on itself`);
    }
  }
  if (d.tasks.length === 0) problems.push('a DAG needs at least one task');
  if (d.runTimeoutMs !== undefined && !(Number.isFinite(d.runTimeoutMs) && d.runTimeoutMs > 0))
    problems.push('runTimeout must be a positive duration');
  for (const t of d.tasks) {
    if (t.operator === BRANCH_OPERATOR && !d.tasks.some((x) => x.upstream.includes(t.taskId)))
      problems.push(`branch task "${t.taskId}" has no downstream tasks to choose from`);
  }
  if (problems.length === 0) {
    const cycle = findCycle(d.tasks);
    if (cycle) problems.push(`cycle: ${cycle.join(' -> ')}`);
  }
  if (problems.length > 0) {
    throw new DagValidationError(`DAG "${d.dagId}" is invalid: ${problems.join('; ')}`, d.dagId);
  }
}

/**
 * A docker task's `variables`: keys a variable can have, and in the list form (one file per key, named
 * after it) no two that one file system would take for the same file. Told now rather than when it runs.
 */
function dockerVariableProblems(t: SerializedTask): string[] {
  const v = t.args.variables;
  if (t.operator !== 'docker' || !v || typeof v !== 'object') return [];
  const keys = (Array.isArray(v) ? v : Object.keys(v)).filter((k): k is string => typeof k === 'string');
  const problems = keys.flatMap((k) => variableKeyProblem(k) ?? []);
  if (Array.isArray(v))
    for (const [a, b] of keysAlikeButCase(keys))
      problems.push(
        `variables "${a}" and "${b}" differ only in case: on a case-insensitive file system they are one file; give them paths with the key -> path form`,
      );
  return problems.map((p) => `task "${t.taskId}": ${p}`);
}

/** Task ids ordered so that every task comes after its upstreams (input must be acyclic). */
export function topologicalOrder(
  tasks: ReadonlyArray<{ taskId: string; upstream: readonly string[] }>,
): string[] {
  const indegree = new Map<string, number>();
  const downstream = new Map<string, string[]>();
  for (const t of tasks) {
    indegree.set(t.taskId, t.upstream.length);
    for (const up of t.upstream) {
      const list = downstream.get(up) ?? [];
      list.push(t.taskId);
      downstream.set(up, list);
    }
  }
  const ready = tasks.filter((t) => t.upstream.length === 0).map((t) => t.taskId);
  const order: string[] = [];
  while (ready.length > 0) {
    const id = ready.pop()!;
    order.push(id);
    for (const down of downstream.get(id) ?? []) {
      const n = indegree.get(down)! - 1;
      indegree.set(down, n);
      if (n === 0) ready.push(down);
    }
  }
  return order;
}
