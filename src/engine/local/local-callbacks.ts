/**
 * Task and run callbacks in `dags test`: run as a worker runs them (operators/callbacks.ts), their lines in
 * the log of the try (or the @<event> try) they are about. A callback's failure is said, never changes a
 * result.
 */
import type { SerializedDag, SerializedTask, TaskCallbackEvent } from '../../core/dag-model.js';
import type { TaskState } from '../../core/states.js';
import { functionKey } from '../dag/functions.js';
import { prefixedLog, runCallback, type CallbackInvocation } from '../operators/callbacks.js';
import type { RunInfo, TaskLog } from '../operators/types.js';

/** What the callbacks of one run need: where DAG files are, variables, and each try's log and run. */
export interface LocalRunScope {
  dagsFolder: string;
  variable(key: string): Promise<string | undefined>;
  logFor(taskId: string, tryNumber: number): TaskLog;
  /** The run as a try sees it (no upstream outputs unless given). */
  runInfo(taskId: string, tryNumber: number, outputs?: Map<string, unknown>): RunInfo;
}

export async function localTaskCallback(
  scope: LocalRunScope,
  dag: SerializedDag,
  task: SerializedTask,
  r: { state: TaskState; tryNumber: number; error: string | null },
  event: TaskCallbackEvent,
) {
  const spec = task.callbacks?.[event];
  if (!spec) return;
  await callback(scope, {
    spec,
    key: functionKey(task.taskId, event),
    dag,
    event,
    state: r.state,
    error: r.error,
    run: scope.runInfo(task.taskId, r.tryNumber),
    forTask: true,
    log: prefixedLog(scope.logFor(task.taskId, r.tryNumber), event),
  });
}

export async function localRunCallback(
  scope: LocalRunScope,
  dag: SerializedDag,
  state: 'success' | 'failed',
  tasks: Array<{ taskId: string; state: TaskState; error: string | null }>,
) {
  const event = state === 'success' ? 'onRunSuccess' : 'onRunFailure';
  const spec = dag.runCallbacks?.[event];
  if (!spec) return;
  const failed = tasks.filter((t) => t.state === 'failed' || t.state === 'upstream_failed');
  const error =
    state === 'failed'
      ? `failed tasks: ${failed.map((t) => `${t.taskId} (${t.error ?? t.state})`).join(', ')}`
      : null;
  const taskId = `@${event}`;
  await callback(scope, {
    spec,
    key: functionKey(null, event),
    dag,
    event,
    state,
    error,
    run: scope.runInfo(taskId, 1),
    forTask: false,
    log: scope.logFor(taskId, 1),
  });
}

async function callback(scope: LocalRunScope, c: Omit<CallbackInvocation, 'dagsFolder' | 'variable'>) {
  const failure = await runCallback({ ...c, dagsFolder: scope.dagsFolder, variable: scope.variable });
  if (failure) c.log.system(`callback failed: ${failure} (the result stays ${c.state})`);
}
