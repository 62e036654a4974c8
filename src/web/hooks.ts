/**
 * Where the dashboard meets work done beside it (issue 18), wired when those land:
 * - `registerMetrics`: the Prometheus `/metrics` route of the web process (services/metrics*.ts).
 * - `whyLine`: the one line saying what holds a task (services/why*.ts), shown on every unfinished task.
 * Both do nothing until then: the pages show no "why" line and /metrics answers 404.
 */
import type { FastifyInstance } from 'fastify';
import type { ConnectionOptions } from '../services/config.js';

export function registerMetrics(_app: FastifyInstance, _conn: ConnectionOptions): void {
  // e.g. app.get('/metrics', async (_req, reply) => reply.type(contentType).send(await metricsText(conn)))
}

/** Per task of a run: what holds it, in one line; null when nothing does or it cannot tell. */
export async function whyLines(
  _conn: ConnectionOptions,
  _runId: string,
  _taskIds: string[],
): Promise<Record<string, string | null>> {
  return {};
}
