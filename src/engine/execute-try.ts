/**
 * One try of a task with its operator, as a worker and `dags test` both run it: the task's timeout, the
 * operator, and the check that its output can be stored; tryFailure makes whatever ended a try the
 * TaskFailure it records. One piece for both, so that `dags test` passes no task that a worker fails.
 */
import { unstorableJson } from '../core/storable.js';
import { leaseGpus } from './operators/gpu-lease.js';
import { resolveOperator } from './operators/registry.js';
import { TaskFailure, type OperatorContext, type OperatorResult, type TaskLog } from './operators/types.js';

/** The cap on a try's output as JSON: outputs live in task rows and travel with claims. */
export const DEFAULT_OUTPUT_CAP_BYTES = 256 * 1024;

/**
 * Runs the task's operator until it returns, throws, or the task's timeout aborts it (through `abort`,
 * whose signal is the context's). Throws when the try fails (see tryFailure). A task asking for GPUs
 * holds specific devices of the worker while its operator runs (ctx.gpuIds); a docker task leases its own.
 */
export async function executeTry(
  ctx: OperatorContext,
  abort: AbortController,
  outputCapBytes: number,
): Promise<OperatorResult> {
  const op = resolveOperator(ctx.task.operator);
  const ms = ctx.task.timeoutMs;
  const timer = ms === null ? undefined : setTimeout(() => abort.abort(`timed out after ${ms} ms`), ms);
  let lease: Awaited<ReturnType<typeof leaseGpus>>;
  try {
    const gpus = ctx.task.operator === 'docker' ? undefined : ctx.task.gpus;
    lease = await leaseGpus(gpus, ctx);
    if (gpus !== undefined && !lease)
      ctx.log.system(
        'no GPUs are lent here (workers lend theirs, see worker --gpus): the task sees every GPU',
      );
    const r = await op.execute(lease ? { ...ctx, gpuIds: lease.ids } : ctx);
    checkOutputSize(r.output, outputCapBytes);
    return r;
  } finally {
    clearTimeout(timer);
    lease?.release();
  }
}

/** What ended a try, as the TaskFailure it records; said in the try's log, when it has one yet. */
export function tryFailure(err: unknown, log: TaskLog | null): TaskFailure {
  const failure = err instanceof TaskFailure ? err : new TaskFailure((err as Error).message ?? String(err));
  log?.system(`failed: ${failure.message}`);
  return failure;
}

function checkOutputSize(output: unknown, cap: number) {
  const json = JSON.stringify(output ?? null);
  if (json === undefined) throw new TaskFailure('the task returned a value that is not JSON-serialisable');
  const bad = unstorableJson(output);
  if (bad) throw new TaskFailure(`the task's output cannot be stored: the value at ${bad.at} ${bad.why}`);
  const bytes = Buffer.byteLength(json);
  if (bytes > cap) {
    throw new TaskFailure(
      `the task's output is ${bytes} bytes, over the cap of ${cap} bytes: store large data elsewhere and return a reference`,
    );
  }
}
