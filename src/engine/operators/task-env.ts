/**
 * The environment a task sees: the AIRTASKS_* variables every kind of task gets, and the worker's own
 * environment, which a task process on the worker's host (not a container) inherits.
 */
import type { OperatorContext } from './types.js';

/** Names the try, for a bash command and a container alike; AIRTASKS_WORKER_ID only when a worker runs it. */
export function taskEnv(ctx: Pick<OperatorContext, 'run' | 'workerId'>): Record<string, string> {
  return {
    ...(ctx.workerId ? { AIRTASKS_WORKER_ID: ctx.workerId } : {}),
    AIRTASKS_DAG_ID: ctx.run.dagId,
    AIRTASKS_RUN_ID: ctx.run.runId,
    AIRTASKS_TASK_ID: ctx.run.taskId,
    AIRTASKS_TRY_NUMBER: String(ctx.run.tryNumber),
    AIRTASKS_LOGICAL_DATE: ctx.run.logicalDate.toISOString(),
    AIRTASKS_CONF: JSON.stringify(ctx.run.conf),
  };
}

/**
 * What a task process on the worker's host sees of the GPUs lent to it (ctx.gpuIds): only those. The
 * indexes are nvidia-smi's, so CUDA counts devices in the same (PCI bus) order. Empty when the worker did
 * not lend it any. Not for containers: they see their devices renumbered from 0 (docker-create.ts).
 */
export function gpuEnv(ctx: Pick<OperatorContext, 'gpuIds'>): Record<string, string> {
  if (!ctx.gpuIds) return {};
  const ids = ctx.gpuIds.join(',');
  return {
    CUDA_VISIBLE_DEVICES: ids,
    CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
    NVIDIA_VISIBLE_DEVICES: ids === '' ? 'void' : ids,
    AIRTASKS_GPUS: ids,
  };
}

/**
 * The worker's environment without the secret key: tasks read secrets as variables, never the key. Copied
 * once: copying process.env is slow (each read crosses into C++), half a millisecond per task here.
 */
let baseEnv: NodeJS.ProcessEnv | null = null;
export function workerEnv(): NodeJS.ProcessEnv {
  if (!baseEnv) {
    baseEnv = { ...process.env };
    delete baseEnv.AIRTASKS_SECRET_KEY;
    delete baseEnv.AIRTASKS_SECRET_KEY_FILE;
  }
  return baseEnv;
}
