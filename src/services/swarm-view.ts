/**
 * The swarm as the dashboard shows it: nodes with their labels and the queues they are labelled for, the
 * stack's services and replicas, what the autoscaler decides now from its inputs (a dry-run pass, which
 * records nothing), and the last decisions it recorded with theirs. Those come from the database, so they
 * are there off a swarm manager too.
 */
import type { Logger } from '../core/logger.js';
import {
  listNodes,
  requireSwarmManager,
  stackServices,
  type NodeInfo,
  type StackServiceState,
} from '../docker/swarm.js';
import {
  autoscaleOnce,
  lastDecisions,
  type AutoscalePass,
  type RecordedDecision,
} from './autoscale/index.js';
import { findProject, stackName, type ConnectionOptions } from './config.js';
import { dockerFor, withDocker, type DockerTarget } from './docker.js';
import { withEngine } from './engine.js';

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
  /** The autoscaler's last recorded decisions for this stack, newest first. */
  decisions: RecordedDecision[];
  decisionsError: string | null;
}

/** How many recorded decisions the view carries. */
export const SWARM_VIEW_DECISIONS = 20;

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
    decisions: [],
    decisionsError: null,
  };
  try {
    view.decisions = await withEngine(o, (e) => lastDecisions(e.db, stack, SWARM_VIEW_DECISIONS));
  } catch (err) {
    view.decisionsError = (err as Error).message;
  }
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
