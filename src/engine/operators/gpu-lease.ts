/**
 * Lending a task specific GPUs of its worker for one try: docker tasks (docker-gpus.ts) and every other
 * kind (executeTry) take them the same way, so a request the worker cannot meet fails with one message.
 */
import type { GpuLease, GpuRequest } from '../worker/gpus.js';
import { TaskFailure, type OperatorContext } from './types.js';

/**
 * Specific devices from the worker's allocator, waiting while they are busy; undefined when the task asks
 * for none or the worker does not manage its GPUs. A request the worker can never meet fails at once.
 */
export async function leaseGpus(
  request: GpuRequest | undefined,
  ctx: Pick<OperatorContext, 'gpus' | 'signal' | 'log' | 'run'>,
): Promise<GpuLease | undefined> {
  if (request === undefined || !ctx.gpus) return undefined;
  const gpus = ctx.gpus;
  let lease: GpuLease;
  try {
    // Named, so that who holds which GPU shows in the worker's row (`airtasks why`, metrics).
    const holder = { runId: ctx.run.runId, taskId: ctx.run.taskId, tryNumber: ctx.run.tryNumber };
    const pending = gpus.acquire(request, { signal: ctx.signal, holder });
    // An acquire that can be served now has settled already; one that has not is waiting for busy devices.
    const now = await Promise.race([pending, Promise.resolve(undefined)]);
    if (!now) {
      ctx.log.system(
        `waiting for GPUs (${describeRequest(request)}): ${gpus.free.length} of ${gpus.devices.length} free now`,
      );
    }
    lease = now ?? (await pending);
  } catch (err) {
    if (ctx.signal.aborted) throw new TaskFailure(`stopped: ${String(ctx.signal.reason ?? 'aborted')}`);
    throw new TaskFailure((err as Error).message);
  }
  if (lease.ids.length > 0) ctx.log.system(`GPUs assigned: ${lease.ids.join(', ')}`);
  return lease;
}

function describeRequest(request: GpuRequest): string {
  return request === 'all' ? 'all' : typeof request === 'number' ? String(request) : request.join(', ');
}
