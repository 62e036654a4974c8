/** Small builders for the serialised DAG shapes that the pure engine functions take. Not a test file. */
import type { SerializedDag, SerializedTask } from '../../src/core/dag-model.js';
import type { TaskStateBrief } from '../../src/engine/scheduler/decide.js';
import type { TaskState } from '../../src/core/states.js';

export function task(
  taskId: string,
  upstream: string[] = [],
  over: Partial<SerializedTask> = {},
): SerializedTask {
  return {
    taskId,
    operator: 'bash',
    upstream,
    queue: 'worker',
    retries: 0,
    retryDelayMs: 1000,
    retryExponentialBackoff: false,
    maxRetryDelayMs: 3_600_000,
    timeoutMs: null,
    triggerRule: 'all_success',
    priorityWeight: 1,
    args: { command: `echo ${taskId}` },
    ...over,
  };
}

export function serialized(tasks: SerializedTask[], dagId = 'test_dag'): SerializedDag {
  return { dagId, description: '', fileloc: '', tags: [], tasks };
}

export function states(
  entries: Record<string, TaskState | { state: TaskState; nextRetryAt: Date | null }>,
): Map<string, TaskStateBrief> {
  return new Map(
    Object.entries(entries).map(([id, s]) => [
      id,
      typeof s === 'string' ? { state: s, nextRetryAt: null } : s,
    ]),
  );
}
