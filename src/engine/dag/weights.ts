/**
 * Priority weight rules (Airflow's weight_rule): a task's effective weight is its own priorityWeight,
 * plus the weights of every task downstream ('downstream') or upstream ('upstream') of it. Computed once
 * when the DAG is serialised, so the scheduler only reads numbers.
 */
import type { SerializedTask, WeightRule } from '../../core/dag-model.js';

export function applyWeightRules(
  tasks: SerializedTask[],
  rules: ReadonlyMap<string, WeightRule>,
): SerializedTask[] {
  const own = new Map(tasks.map((t) => [t.taskId, t.priorityWeight]));
  const upstream = new Map(tasks.map((t) => [t.taskId, t.upstream]));
  const downstream = new Map<string, string[]>(tasks.map((t) => [t.taskId, []]));
  for (const t of tasks) for (const u of t.upstream) downstream.get(u)?.push(t.taskId);
  return tasks.map((t) => {
    const rule = rules.get(t.taskId) ?? 'absolute';
    if (rule === 'absolute') return t;
    const edges = rule === 'downstream' ? downstream : upstream;
    return { ...t, priorityWeight: t.priorityWeight + sumOfReachable(t.taskId, edges, own) };
  });
}

/** Sum of the weights of the tasks reachable from `start` (not counting it), each counted once. */
function sumOfReachable(
  start: string,
  edges: ReadonlyMap<string, readonly string[]>,
  weight: ReadonlyMap<string, number>,
): number {
  const seen = new Set<string>([start]);
  const stack = [...(edges.get(start) ?? [])];
  let sum = 0;
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    sum += weight.get(id) ?? 0;
    stack.push(...(edges.get(id) ?? []));
  }
  return sum;
}
