/** `airtasks autoscale` as plain functions: one pass (--once, --dry-run) or the long-lived loop. */
import type { Logger } from '../../core/logger.js';
import { usageError } from '../../core/errors.js';
import { requireSwarmManager } from '../../docker/swarm.js';
import { requireProject, resolveConnection, stackName, type ConnectionOptions } from '../config.js';
import { checkServiceUrl } from '../connection-errors.js';
import { dockerFor, withDocker, type DockerTarget } from '../docker.js';
import { Autoscaler, AutoscaleLoop, type QueueOutcome } from './autoscaler.js';
import { autoscaledQueues, DEFAULT_COOLDOWN_MS, type QueueAutoscaleConfig } from './config.js';
import { DecisionHistory } from './history.js';
import { QueueInputs } from './inputs.js';

export type { QueueOutcome } from './autoscaler.js';
export { lastDecisions, type RecordedDecision } from './history.js';

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

async function prepare(o: AutoscaleOptions, idleWhenNone = false) {
  const conn = resolveConnection(o);
  // A URL that can never work is refused now, not as a failed reading every pass.
  checkServiceUrl('broker', conn.brokerUrl);
  const project = requireProject(conn.project, 'the autoscaler reads its queues from the project');
  const stack = stackName(project, o.stack);
  const queues: QueueAutoscaleConfig[] = autoscaledQueues(
    project,
    { stack, cooldownMs: o.cooldownMs ?? DEFAULT_COOLDOWN_MS },
    o.queues,
  );
  if (queues.length === 0 && idleWhenNone) return { stack, queues, active: null };
  if (queues.length === 0)
    throw usageError(
      `no queue to autoscale: give a queue of ${project.configFile} a "max" ` +
        '(e.g. "queues": {"worker": {"concurrency": 2, "min": 1, "max": 4}})',
    );
  const docker = dockerFor(o);
  await withDocker(o, () => requireSwarmManager(docker));
  const inputs = new QueueInputs(conn, o.logger);
  const scaler = new Autoscaler({
    queues,
    docker,
    read: (q) => inputs.read(q),
    logger: o.logger,
    dryRun: o.dryRun,
    hookTimeoutMs: o.hookTimeoutMs,
    history: o.dryRun ? undefined : new DecisionHistory(inputs.db, stack, o.logger),
  });
  return { stack, queues, active: { inputs, scaler } };
}

/** One pass: decide for every queue and (unless dryRun) act; a scale-down needs cooldown 0 here. */
export async function autoscaleOnce(o: AutoscaleOptions): Promise<AutoscalePass> {
  const { stack, active } = await prepare(o);
  const { inputs, scaler } = active!; // without idleWhenNone, prepare() throws when no queue autoscales
  try {
    const queues = await scaler.pass();
    return { stack, dryRun: !!o.dryRun, at: new Date().toISOString(), queues };
  } finally {
    await inputs.close();
  }
}

/** The long-lived autoscaler; stop() finishes the pass in progress and closes its connections. */
export async function startAutoscaler(
  o: AutoscaleOptions & { intervalMs: number },
): Promise<{ stop(): Promise<void> }> {
  const { stack, queues, active } = await prepare(o, true);
  if (!active) {
    // A deployed stack whose project autoscales nothing: stay up and quiet rather than restart forever.
    o.logger.warn(
      { stack },
      'no queue of airtasks.json has a "max": nothing to autoscale (the autoscaler idles until stopped)',
    );
    // Nothing else holds the event loop open: without this timer Node would end the process (exit 13,
    // an unsettled top-level await) and swarm would restart it forever.
    const idle = setInterval(() => undefined, 2 ** 30);
    return {
      stop: () => {
        clearInterval(idle);
        return Promise.resolve();
      },
    };
  }
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
  const loop = new AutoscaleLoop(active.scaler, o.intervalMs, o.logger, () => active.inputs.close());
  loop.start();
  return loop;
}
