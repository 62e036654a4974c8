/**
 * Branching (Airflow's BranchPythonOperator): a branch task's function returns which of its direct
 * downstream tasks run; the others are skipped, and the skip propagates by trigger rules. The choice is
 * stored as the task's output (a list of task ids), in the same statement that records its success, and
 * the scheduler's decide() reads it from there: no separate step that a crash or a second scheduler could
 * half-apply.
 */
import type { BuiltinOperator, SerializedDag, SerializedTask } from '../../core/dag-model.js';

export const BRANCH_OPERATOR = 'branch' satisfies BuiltinOperator;

/** What a branch function may return: task ids or references, one or a list; null or [] skips them all. */
export type BranchChoice =
  string | { readonly id: string } | ReadonlyArray<string | { readonly id: string }> | null | undefined;

/** The stored choice of a branch task that succeeded (ids of the downstream tasks to run). */
export function branchChoice(output: unknown): string[] {
  return Array.isArray(output) ? output.filter((x): x is string => typeof x === 'string') : [];
}

/** Direct downstream task ids of a task. */
export function directDownstream(dag: SerializedDag, taskId: string): string[] {
  return dag.tasks.filter((t) => t.upstream.includes(taskId)).map((t) => t.taskId);
}

export class BranchChoiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BranchChoiceError';
  }
}

/**
 * Turns what a branch function returned into the list of chosen task ids; throws BranchChoiceError for
 * anything that is not a direct downstream task of the branch.
 */
export function resolveBranchChoice(dag: SerializedDag, task: SerializedTask, value: unknown): string[] {
  const downstream = directDownstream(dag, task.taskId);
  const items = value === null || value === undefined ? [] : Array.isArray(value) ? value : [value];
  const ids: string[] = [];
  for (const item of items as unknown[]) {
    const id =
      typeof item === 'string'
        ? item
        : item && typeof item === 'object' && typeof (item as { id?: unknown }).id === 'string'
          ? (item as { id: string }).id
          : null;
    if (id === null) {
      throw new BranchChoiceError(
        `branch task "${task.taskId}" returned ${describe(item)}; return a task id, a task reference, a list of them, or null to skip all`,
      );
    }
    if (!downstream.includes(id)) {
      throw new BranchChoiceError(
        `branch task "${task.taskId}" chose "${id}", which is not one of its direct downstream tasks (${downstream.join(', ') || 'none'})`,
      );
    }
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a nested list';
  return typeof v === 'object' ? 'an object that is not a task reference' : `${typeof v} ${String(v)}`;
}
