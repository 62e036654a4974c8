/** A docker task's GPUs: what it asks for, the devices the worker lends it, and how the engine is told. */
import type Docker from 'dockerode';
import type { GpuRequest } from '../worker/gpus.js';
import type { DockerArgs } from './docker-args.js';
import type { OperatorContext } from './types.js';

// Docker tasks lease their devices as every kind of task does.
export { leaseGpus } from './gpu-lease.js';

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
