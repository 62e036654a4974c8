/**
 * A scheduler's or worker's part in the process's metrics: its logger counts database and broker errors,
 * its event stream feeds the counters, a worker adds its slots and GPUs, and a scheduler (unless told
 * not to) adds the gauges read from the store.
 */
import { EngineEventStream } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import type { Broker } from '../../engine/broker/broker.js';
import type { Db } from '../../engine/store/db.js';
import type { GpuAllocator } from '../../engine/worker/gpus.js';
import { addClusterGauges } from './cluster.js';
import { countEngineEvents } from './events.js';
import { addWorkerSource, countingErrors } from './process.js';
import { createMetrics, type AirtasksMetrics } from './registry.js';
import { serveMetrics } from './server.js';

export interface DaemonMetrics {
  metrics: AirtasksMetrics;
  /** Add the store-read gauges of the whole installation (a scheduler's default: true). */
  cluster?: boolean;
}

interface Bindable {
  logger: Logger;
  events?: EngineEventStream;
  metrics?: DaemonMetrics;
}

function bindCommon(o: Bindable) {
  if (!o.metrics) return { options: { logger: o.logger, events: o.events }, offs: [] as Array<() => void> };
  const m = o.metrics.metrics;
  const logger = countingErrors(o.logger, m);
  const events = o.events ?? new EngineEventStream(logger);
  return { options: { logger, events }, offs: [countEngineEvents(events, m)] };
}

export function bindSchedulerMetrics(o: Bindable, engine: { db: Db; broker: Broker | null }) {
  const { options, offs } = bindCommon(o);
  if (o.metrics && o.metrics.cluster !== false)
    offs.push(
      addClusterGauges(o.metrics.metrics, { db: engine.db, broker: engine.broker, logger: options.logger }),
    );
  return { options, unbind: () => offs.forEach((off) => off()) };
}

export function bindWorkerMetrics(o: Bindable) {
  const { options, offs } = bindCommon(o);
  return {
    options,
    watch(worker: { readonly id: string; readonly busy: number }, concurrency: number, gpus?: GpuAllocator) {
      if (o.metrics) offs.push(addWorkerSource(o.metrics.metrics, worker, concurrency, gpus));
    },
    unbind: () => offs.forEach((off) => off()),
  };
}

/** Where to serve /metrics (`--metrics-port`, `--metrics-host`). */
export interface MetricsListen {
  port: number;
  /** Default 127.0.0.1. */
  host?: string;
}

/**
 * Starts a daemon (or several, sharing one registry) with metrics when `listen` is given, serving them:
 * the server first, so a port in use fails before anything starts; its stop() closes the server last.
 */
export async function withMetricsServer<D extends { stop(): Promise<void> }>(
  listen: MetricsListen | undefined,
  logger: Logger,
  start: (metrics: DaemonMetrics | undefined) => Promise<D>,
): Promise<D & { metricsUrl: string | null }> {
  if (!listen) return Object.assign(await start(undefined), { metricsUrl: null });
  const metrics = createMetrics();
  const server = await serveMetrics({ metrics, port: listen.port, host: listen.host, logger });
  let d: D;
  try {
    d = await start({ metrics });
  } catch (err) {
    await server.close();
    throw err;
  }
  const stop = d.stop.bind(d);
  return Object.assign(d, {
    metricsUrl: server.url,
    async stop() {
      await stop();
      await server.close();
    },
  });
}
