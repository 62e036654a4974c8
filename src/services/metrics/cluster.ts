/**
 * Gauges of the whole installation, read from the store (and the broker, for queue depths) when scraped:
 * runs by state, queued and running tasks and broker messages by queue, pool slots, and every live worker's
 * slots and GPUs. One reading serves every gauge of a scrape and is kept for `cacheMs`, so scrapes from
 * several Prometheus servers (or a dashboard polling) cost the database a few grouped counts at most once
 * per period. Mount them on one process per installation (the web process, or a scheduler): summing them
 * across processes would count everything several times.
 */
import { Gauge } from 'prom-client';
import type { Logger } from '../../core/logger.js';
import type { Broker, QueueDepth } from '../../engine/broker/broker.js';
import type { Queryable } from '../../engine/store/db.js';
import { activeTasksByQueue, runsByState } from '../../engine/store/metrics.js';
import { listPools, type PoolUsage } from '../../engine/store/pools.js';
import { liveWorkers, type LiveWorker } from '../../engine/store/waits.js';
import type { AirtasksMetrics, WorkerSource } from './registry.js';

/** Workers whose heartbeat is older than this are not counted (the scheduler's lost threshold is 30 s). */
const LIVE_WITHIN_MS = 30_000;

interface Reading {
  runs: Array<{ state: string; n: number }>;
  tasks: Array<{ queue: string; state: string; n: number }>;
  depths: QueueDepth[];
  workers: LiveWorker[];
  pools: PoolUsage[];
}

export interface ClusterGaugeOptions {
  db: Queryable;
  /** For queue depths (ready and unacknowledged messages, consumers); without it they are left out. */
  broker?: Broker | null;
  /** How long one reading serves scrapes; default 5 s. */
  cacheMs?: number;
  logger?: Logger;
}

/** Registers the cluster gauges on the metrics' registry; returns a function that removes them. */
export function addClusterGauges(m: AirtasksMetrics, o: ClusterGaugeOptions): () => void {
  const cacheMs = o.cacheMs ?? 5000;
  let cached: { at: number; p: Promise<Reading> } | null = null;
  const read = (): Promise<Reading> => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.p;
    const p = readCluster(o, m).catch((err: Error) => {
      // A failed reading answers empty and is not kept: the next scrape tries again.
      m.errors.inc({ service: 'database', error: 'metrics reading failed' });
      o.logger?.warn({ err: err.message }, 'reading the cluster metrics failed');
      cached = null;
      return { runs: [], tasks: [], depths: [], workers: [], pools: [] } as Reading;
    });
    cached = { at: Date.now(), p };
    return p;
  };
  const registers = [m.registry];
  const gauges = [
    new Gauge({
      name: 'airtasks_runs',
      help: 'Runs by state (queued, running, success, failed, cancelled).',
      labelNames: ['state'] as const,
      registers,
      async collect() {
        const r = await read();
        this.reset();
        for (const state of ['queued', 'running', 'success', 'failed', 'cancelled']) this.set({ state }, 0);
        for (const x of r.runs) this.set({ state: x.state }, x.n);
      },
    }),
    new Gauge({
      name: 'airtasks_queue_tasks',
      help: 'Task instances of each queue that are queued (sent, not claimed yet) or running.',
      labelNames: ['queue', 'state'] as const,
      registers,
      async collect() {
        const r = await read();
        this.reset();
        for (const q of queuesOf(r))
          for (const state of ['queued', 'running']) this.set({ queue: q, state }, 0);
        for (const x of r.tasks) this.set({ queue: x.queue, state: x.state }, x.n);
      },
    }),
    new Gauge({
      name: 'airtasks_queue_messages',
      help: 'Messages in the broker by queue: state="ready" (waiting for a consumer) or "unacked" (delivered, not acknowledged; the PostgreSQL queue only).',
      labelNames: ['queue', 'state'] as const,
      registers,
      async collect() {
        const r = await read();
        this.reset();
        for (const d of r.depths) {
          this.set({ queue: d.queue, state: 'ready' }, d.ready);
          if (d.unacked !== null) this.set({ queue: d.queue, state: 'unacked' }, d.unacked);
        }
      },
    }),
    new Gauge({
      name: 'airtasks_queue_consumers',
      help: 'Consumers of each queue as the broker counts them (RabbitMQ only).',
      labelNames: ['queue'] as const,
      registers,
      async collect() {
        const r = await read();
        this.reset();
        for (const d of r.depths) if (d.consumers !== null) this.set({ queue: d.queue }, d.consumers);
      },
    }),
    new Gauge({
      name: 'airtasks_queue_workers',
      help: 'Live workers consuming each queue (0: tasks queued there wait for ever).',
      labelNames: ['queue'] as const,
      registers,
      async collect() {
        const r = await read();
        this.reset();
        for (const q of queuesOf(r))
          this.set(
            { queue: q },
            r.workers.filter((w) => w.queues.includes(q) || w.queues.includes('*')).length,
          );
      },
    }),
    new Gauge({
      name: 'airtasks_pool_slots',
      help: 'Slots of each pool: state="total", "running" (held by running tasks) or "queued" (held by queued tasks).',
      labelNames: ['pool', 'state'] as const,
      registers,
      async collect() {
        const r = await read();
        this.reset();
        for (const p of r.pools) {
          this.set({ pool: p.name, state: 'total' }, p.slots);
          this.set({ pool: p.name, state: 'running' }, p.running);
          this.set({ pool: p.name, state: 'queued' }, p.queued);
        }
      },
    }),
  ];
  const source: WorkerSource = {
    cluster: true,
    read: async () =>
      (await read()).workers.map((w) => ({
        workerId: w.worker_id,
        busy: w.running,
        slots: w.concurrency,
        gpusTotal: w.gpus?.devices.length ?? 0,
        gpusHeld: w.gpus?.held.reduce((n, h) => n + h.ids.length, 0) ?? 0,
        gpuWaiting: w.gpus?.waiting.length ?? 0,
      })),
  };
  m.workerSources.add(source);
  return () => {
    m.workerSources.delete(source);
    for (const g of gauges) m.registry.removeSingleMetric((g as unknown as { name: string }).name);
  };
}

/** Queues that tasks wait in or that workers consume. */
function queuesOf(r: Reading): string[] {
  const names = [...r.tasks.map((t) => t.queue), ...r.workers.flatMap((w) => w.queues)];
  return [...new Set(names.filter((q) => q !== '*'))].sort();
}

async function readCluster(o: ClusterGaugeOptions, m: AirtasksMetrics): Promise<Reading> {
  const [runs, tasks, workers, pools] = [
    await runsByState(o.db),
    await activeTasksByQueue(o.db),
    await liveWorkers(o.db, LIVE_WITHIN_MS),
    await listPools(o.db),
  ];
  const r: Reading = { runs, tasks, workers, pools, depths: [] };
  if (o.broker) {
    try {
      r.depths = await o.broker.depths(queuesOf(r));
    } catch (err) {
      // Depths are left out of this reading; the other gauges still answer.
      m.errors.inc({ service: 'broker', error: 'queue depths failed' });
      o.logger?.warn({ err: (err as Error).message }, 'reading queue depths for the metrics failed');
    }
  }
  return r;
}
