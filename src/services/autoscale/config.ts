/**
 * The autoscaler's per-queue settings, from the `queues` of airtasks.json:
 *   {"worker": {"concurrency": 2, "min": 1, "max": 4, "cooldown": "2m", "nodeGroupHook": "...", "workersPerNode": 2}}
 * A queue is autoscaled when it has a `max`; bad values are refused with the queue and field named.
 */
import { toMs } from '../../core/duration.js';
import type { Duration } from '../../core/duration.js';
import type { QueueScalePolicy } from '../../engine/autoscale/decide.js';
import { usageError } from '../../core/errors.js';
import type { Project } from '../config.js';

export interface QueueAutoscaleConfig extends QueueScalePolicy {
  queue: string;
  /** The swarm service of the queue's workers (default <stack>_worker-<queue>). */
  service: string;
  /** Command run with the desired node count when it changes (AIRTASKS_DESIRED_NODES). */
  nodeGroupHook: string | null;
  /** Workers one machine carries, for the node count handed to the hook (default 1). */
  workersPerNode: number;
}

export interface AutoscaleDefaults {
  stack: string;
  cooldownMs: number;
}

export const DEFAULT_COOLDOWN_MS = 120_000;
const QUEUE_NAME = /^[A-Za-z0-9_.-]{1,100}$/;

export function workerServiceName(stack: string, queue: string): string {
  return `${stack}_worker-${queue}`;
}

/** Autoscaled queues of the project (those with a `max`), validated; `only` picks some of them. */
export function autoscaledQueues(
  project: Project,
  defaults: AutoscaleDefaults,
  only?: string[],
): QueueAutoscaleConfig[] {
  const where = project.configFile ?? 'airtasks.json';
  const queues = project.config.queues ?? {};
  if (typeof queues !== 'object' || Array.isArray(queues))
    throw usageError(`"queues" in ${where} must be an object of queue name -> settings`);
  for (const q of only ?? [])
    if (!(q in queues))
      throw usageError(
        `queue "${q}" is not in the "queues" of ${where}: add it with a "max" to autoscale it`,
      );
  const out: QueueAutoscaleConfig[] = [];
  for (const [queue, raw] of Object.entries(queues)) {
    if (only && !only.includes(queue)) continue;
    const s = (raw ?? {}) as Record<string, unknown>;
    const bad = (field: string, what: string) =>
      usageError(`queues.${queue}.${field} in ${where} must be ${what}, got ${JSON.stringify(s[field])}`);
    if (s.max === undefined) {
      if (only) throw usageError(`queues.${queue} in ${where} has no "max": give it one to autoscale it`);
      continue;
    }
    if (!QUEUE_NAME.test(queue)) throw usageError(`invalid queue name "${queue}" in ${where}`);
    const int = (field: string, dflt: number, least: number): number => {
      const v = s[field] ?? dflt;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < least)
        throw bad(field, `an integer of at least ${least}`);
      return v;
    };
    const concurrency = int('concurrency', 1, 1);
    const min = int('min', 1, 0);
    const max = int('max', 1, Math.max(1, min));
    const workersPerNode = int('workersPerNode', 1, 1);
    let cooldownMs = defaults.cooldownMs;
    if (s.cooldown !== undefined) {
      if (typeof s.cooldown !== 'string' && typeof s.cooldown !== 'number')
        throw bad('cooldown', 'a duration such as "30s" or "2m"');
      try {
        cooldownMs = toMs(s.cooldown as Duration, `queues.${queue}.cooldown`);
      } catch (err) {
        throw usageError(`${(err as Error).message} (in ${where})`);
      }
    }
    const hook = s.nodeGroupHook;
    if (hook !== undefined && (typeof hook !== 'string' || !hook.trim()))
      throw bad('nodeGroupHook', 'a non-empty shell command');
    const service = s.service ?? workerServiceName(defaults.stack, queue);
    if (typeof service !== 'string' || !service) throw bad('service', 'a swarm service name');
    out.push({
      queue,
      service,
      concurrency,
      min,
      max,
      cooldownMs,
      nodeGroupHook: typeof hook === 'string' ? hook : null,
      workersPerNode,
    });
  }
  return out;
}
