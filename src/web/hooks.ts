/**
 * Where the dashboard meets the services beside it: the Prometheus `/metrics` route of the web process
 * (cluster gauges read from the store on a scrape, cached; docs/metrics.md) and the one line saying what
 * holds a task (services/why.ts), shown on every unfinished task of a run page.
 */
import type { FastifyInstance } from 'fastify';
import type { ConnectionOptions } from '../services/config.js';
import { addClusterGauges, createMetrics, metricsResponse } from '../services/metrics/index.js';
import { explainWaitIn } from '../services/why.js';

/** Serves /metrics (behind the same token as every route) from the server's open engine. */
export function registerMetrics(app: FastifyInstance, conn: ConnectionOptions): void {
  const engine = conn.engine;
  if (!engine) return;
  const metrics = createMetrics();
  addClusterGauges(metrics, { db: engine.db, broker: engine.broker });
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await metricsResponse(metrics);
    return reply.type(contentType).header('cache-control', 'no-store').send(body);
  });
}

/** Per task of a run: what holds it, in one line; empty when it cannot tell (the page then shows none). */
export async function whyLines(
  conn: ConnectionOptions,
  runId: string,
  taskIds: string[],
): Promise<Record<string, string | null>> {
  const engine = conn.engine;
  if (!engine || taskIds.length === 0) return {};
  try {
    const why = await explainWaitIn({ db: engine.db, broker: engine.broker }, { runId });
    const wanted = new Set(taskIds);
    return Object.fromEntries(why.tasks.filter((t) => wanted.has(t.taskId)).map((t) => [t.taskId, t.text]));
  } catch {
    return {};
  }
}
