/**
 * The functions of a DAG file that workers call (node and branch tasks, callbacks, a trigger's computed
 * conf or items, custom operators): the key each is kept under in Dag.functions, and callbacks' stored form.
 */
import type { CallbackSpec, RunCallbackEvent, TaskCallbackEvent } from '../../core/dag-model.js';
import type { Callback } from './options.js';
import { DagValidationError } from './validate.js';

/** Any function of a DAG file the worker calls: a node task, a callback, a trigger's conf or items. */
export type DagFunction = (ctx: never) => unknown;

export const TASK_CALLBACK_EVENTS: readonly TaskCallbackEvent[] = ['onSuccess', 'onFailure', 'onRetry'];
export const RUN_CALLBACK_EVENTS: readonly RunCallbackEvent[] = ['onRunSuccess', 'onRunFailure'];

/**
 * Key of a function of the DAG file in Dag.functions: a task's own function under its id, a task
 * callback under `<task>#<event>`, a run callback under `#<event>` ('#' is never part of an id).
 */
export function functionKey(taskId: string | null, event?: TaskCallbackEvent | RunCallbackEvent): string {
  return event ? `${taskId ?? ''}#${event}` : (taskId ?? '');
}

/** A callback's code-free form, and its function if it is one (kept in Dag.functions by the caller). */
export function callbackSpec(
  cb: Callback,
  what: string,
  dagId: string,
): { spec: CallbackSpec; fn?: DagFunction } {
  if (typeof cb === 'string') {
    if (cb.trim() === '') throw new DagValidationError(`${what}: a bash callback needs a command`, dagId);
    return { spec: { bash: cb } };
  }
  if (typeof cb !== 'function') {
    throw new DagValidationError(`${what} must be a bash command (string) or a function`, dagId);
  }
  return { spec: { node: cb.toString() }, fn: cb };
}
