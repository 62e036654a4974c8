/** What the autoscaler tests share: the real services, a one-node swarm, and names of their own. */
import type Docker from 'dockerode';
import { ensureBaseImage, requireDocker } from './docker.js';
import { freshDb, requireService, uniqueName } from './env.js';
import { ensureSwarm } from './project.js';

export interface SwarmQueueFixture {
  d: Docker;
  /** The locally built base image (node + busybox). */
  image: string;
  db: Awaited<ReturnType<typeof freshDb>>;
  /** A stack name of this test's own; the worker service of queue q is `service`. */
  stack: string;
  service: string;
}

/** Call in a before() hook: skips (outside CI) when PostgreSQL, RabbitMQ or Docker is missing. */
export async function swarmQueueFixture(ctx: Mocha.Context): Promise<SwarmQueueFixture> {
  await requireService(ctx, 'postgres');
  await requireService(ctx, 'rabbitmq');
  const d = await requireDocker(ctx);
  await ensureSwarm();
  const image = await ensureBaseImage(d);
  const db = await freshDb();
  const stack = uniqueName('as').replaceAll('_', '-');
  return { d, image, db, stack, service: `${stack}_worker-q` };
}
