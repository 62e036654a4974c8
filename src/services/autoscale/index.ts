/** `airtasks autoscale` as plain functions: one pass (--once, --dry-run) or the long-lived loop. */
import path from 'node:path';
import type { Logger } from '../../engine/logger.js';
import { usageError } from '../../engine/errors.js';
import { requireSwarmManager } from '../../docker/swarm.js';
import { resolveConnection, type ConnectionOptions, type Project } from '../config.js';
import { dockerFor, withEngine, type DockerTarget } from '../swarm.js';
import { Autoscaler, AutoscaleLoop, type QueueOutcome } from './autoscaler.js';
import { autoscaledQueues, DEFAULT_COOLDOWN_MS, type QueueAutoscaleConfig } from './config.js';
import { QueueInputs } from './inputs.js';

export type { QueueOutcome } from './autoscaler.js';

export interface AutoscaleOptions extends ConnectionOptions, DockerTarget {
  /** Stack whose worker-<queue> services are scaled (default: airtasks.json's stackName). */
  stack?: string;
  /** Only these queues (default: every queue of airtasks.json with a "max"). */
  queues?: string[];
  /** Default cooldown for queues that set none. */
  cooldownMs?: number;
  dryRun?: boolean;
  hookTimeoutMs?: number;
  logger: Logger;
}

export interface AutoscalePass {
  stack: string;
  dryRun: boolean;
  at: string;
  queues: QueueOutcome[];
}

function stackOf(project: Project, given: string | undefined): string {
  const configured = project.config.stackName;
  const stack =
    given ?? (typeof configured === 'string' && configured ? configured : path.basename(project.root));
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(stack)) throw usageError(`invalid stack name "${stack}"`);
  return stack;
}

async function prepare(o: AutoscaleOptions) {
  const conn = resolveConnection(o);
  if (!conn.project.configFile)
    throw usageError('no airtasks.json here or above: the autoscaler reads its queues from the project');
  const stack = stackOf(conn.project, o.stack);
  const queues: QueueAutoscaleConfig[] = autoscaledQueues(
    conn.project,
    { stack, cooldownMs: o.cooldownMs ?? DEFAULT_COOLDOWN_MS },
    o.queues,
  );
  if (queues.length === 0)
    throw usageError(
      `no queue to autoscale: give a queue of ${conn.project.configFile} a "max" ` +
        '(e.g. "queues": {"worker": {"concurrency": 2, "min": 1, "max": 4}})',
    );
  const docker = dockerFor(o);
  await withEngine(o, () => requireSwarmManager(docker));
  const inputs = new QueueInputs(conn, o.logger);
  const scaler = new Autoscaler({
    queues,
    docker,
    read: (q) => inputs.read(q),
    logger: o.logger,
    dryRun: o.dryRun,
    hookTimeoutMs: o.hookTimeoutMs,
  });
  return { stack, queues, inputs, scaler };
}

/** One pass: decide for every queue and (unless dryRun) act; a scale-down needs cooldown 0 here. */
export async function autoscaleOnce(o: AutoscaleOptions): Promise<AutoscalePass> {
  const { stack, inputs, scaler } = await prepare(o);
  try {
    const queues = await scaler.pass();
    return { stack, dryRun: !!o.dryRun, at: new Date().toISOString(), queues };
  } finally {
    await inputs.close();
  }
}

/** The long-lived autoscaler; stop() finishes the pass in progress and closes its connections. */
export async function startAutoscaler(o: AutoscaleOptions & { intervalMs: number }): Promise<AutoscaleLoop> {
  const { stack, queues, inputs, scaler } = await prepare(o);
  o.logger.info(
    {
      stack,
      intervalMs: o.intervalMs,
      dryRun: !!o.dryRun,
      queues: queues.map(({ queue, service, min, max, concurrency, cooldownMs, nodeGroupHook }) => ({
        queue,
        service,
        min,
        max,
        concurrency,
        cooldownMs,
        nodeGroupHook: !!nodeGroupHook,
      })),
    },
    'autoscaler started',
  );
  const loop = new AutoscaleLoop(scaler, o.intervalMs, o.logger, () => inputs.close());
  loop.start();
  return loop;
}
