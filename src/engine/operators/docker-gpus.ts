/** A docker task's GPUs: what it asks for, the devices the worker lends it, and how the engine is told. */
import type Docker from 'dockerode';
import type { GpuLease, GpuRequest } from '../worker/gpus.js';
import type { DockerArgs } from './docker-args.js';
import { stopped } from './docker-stop.js';
import { TaskFailure, type OperatorContext } from './types.js';

/** The task's gpus; under the nvidia runtime without gpus on a worker that manages GPUs, all of them. */
export function gpuRequestOf(
  a: DockerArgs,
  runtime: string | undefined,
  ctx: OperatorContext,
): GpuRequest | undefined {
  if (a.gpus === undefined && runtime === 'nvidia' && ctx.gpus) {
    // The nvidia runtime shows a CUDA image every GPU unless told otherwise: hold them all.
    ctx.log.system(
      "runtime nvidia without gpus: the task holds all of this worker's GPUs (set gpus to ask for fewer)",
    );
    return 'all';
  }
  return a.gpus;
}

/**
 * Specific devices from the worker's allocator, waiting while they are busy; undefined when the task asks
 * for none or the worker does not manage its GPUs (the engine chooses then).
 */
export async function leaseGpus(
  request: GpuRequest | undefined,
  ctx: OperatorContext,
): Promise<GpuLease | undefined> {
  if (request === undefined || !ctx.gpus) return undefined;
  const gpus = ctx.gpus;
  let lease: GpuLease;
  try {
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
    if (ctx.signal.aborted) throw stopped(ctx.signal);
    throw new TaskFailure((err as Error).message);
  }
  if (lease.ids.length > 0) ctx.log.system(`GPUs assigned: ${lease.ids.join(', ')}`);
  return lease;
}

/** The engine's device requests: the assigned devices, else the request as the engine reads it. */
export function deviceRequestsFor(
  request: GpuRequest | undefined,
  assigned: readonly string[] | undefined,
): Docker.DeviceRequest[] | undefined {
  if (request === undefined) return undefined;
  const base = { Driver: 'nvidia', Capabilities: [['gpu']] };
  if (assigned) return assigned.length > 0 ? [{ ...base, DeviceIDs: [...assigned] }] : undefined;
  if (request === 'all') return [{ ...base, Count: -1 }];
  if (typeof request === 'number') return request > 0 ? [{ ...base, Count: request }] : undefined;
  return [{ ...base, DeviceIDs: request.map(String) }];
}

/** NVIDIA_VISIBLE_DEVICES for the nvidia runtime; undefined for a count the worker did not assign. */
export function visibleDevices(
  request: GpuRequest,
  assigned: readonly string[] | undefined,
): string | undefined {
  return assigned
    ? assigned.join(',')
    : request === 'all'
      ? 'all'
      : Array.isArray(request)
        ? request.join(',')
        : undefined;
}

function describeRequest(request: GpuRequest): string {
  return request === 'all' ? 'all' : typeof request === 'number' ? String(request) : request.join(', ');
}
