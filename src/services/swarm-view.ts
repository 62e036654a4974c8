/**
 * The swarm as the dashboard shows it: nodes with their labels and the queues they are labelled for, the
 * stack's services and replicas, and what the autoscaler decides now from its inputs (a dry-run pass: the
 * autoscaler keeps no history, and the same inputs give the same decision it would take).
 */
import type { Logger } from '../core/logger.js';
import {
  listNodes,
  requireSwarmManager,
  stackServices,
  type NodeInfo,
  type StackServiceState,
} from '../docker/swarm.js';
import { autoscaleOnce, type AutoscalePass } from './autoscale/index.js';
import { findProject, stackName, type ConnectionOptions } from './config.js';
import { dockerFor, withDocker, type DockerTarget } from './docker.js';

/** Node labels that name a queue: airtasks.queue.<name>=true (see `airtasks nodes label`). */
const QUEUE_LABEL_PREFIX = 'airtasks.queue.';

export interface SwarmView {
  /** Null when this Docker engine is no swarm manager (or unreachable): why. */
  unavailable: string | null;
  stack: string;
  nodes: Array<NodeInfo & { queues: string[] }>;
  services: StackServiceState[];
  autoscaler: AutoscalePass | null;
  autoscalerError: string | null;
}

export async function swarmOverview(
  o: ConnectionOptions & DockerTarget & { stack?: string; logger: Logger },
): Promise<SwarmView> {
  let stack = o.stack ?? 'airtasks';
  try {
    stack = stackName(findProject(o.cwd), o.stack);
  } catch {
    // No project here: the default stack name.
  }
  const view: SwarmView = {
    unavailable: null,
    stack,
    nodes: [],
    services: [],
    autoscaler: null,
    autoscalerError: null,
  };
  const docker = dockerFor(o);
  try {
    await withDocker(o, async () => {
      await requireSwarmManager(docker);
      view.nodes = (await listNodes(docker)).map((n) => ({
        ...n,
        queues: Object.keys(n.labels)
          .filter((k) => k.startsWith(QUEUE_LABEL_PREFIX))
          .map((k) => k.slice(QUEUE_LABEL_PREFIX.length)),
      }));
      view.services = await stackServices(docker, stack);
    });
  } catch (err) {
    view.unavailable = (err as Error).message;
    return view;
  }
  try {
    view.autoscaler = await autoscaleOnce({ ...o, engine: undefined, stack, dryRun: true, logger: o.logger });
  } catch (err) {
    view.autoscalerError = (err as Error).message;
  }
  return view;
}
