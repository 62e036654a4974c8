/**
 * The Prometheus metrics of airtasks (prom-client): one registry per process, the instruments the engine's
 * events and the processes feed, and the gauges read from the store on a scrape (cluster.ts). Every name is
 * listed in docs/metrics.md; the names and labels are part of the documented interface.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Seconds, from a node task of milliseconds to a training job of hours. */
const TRY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600];
/** Seconds: a pass is usually a few milliseconds; a pass starting thousands of runs takes seconds. */
const PASS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface AirtasksMetrics {
  readonly registry: Registry;
  /** Tries that ended, by DAG, task and how they ended (success, failed, retried, lost). */
  readonly triesTotal: Counter<'dag_id' | 'task_id' | 'state'>;
  /** Tries this process started (claimed), by DAG and queue. */
  readonly triesStarted: Counter<'dag_id' | 'queue'>;
  /** How long tries ran, by DAG and how they ended (no task label: buckets times tasks is too many series). */
  readonly tryDuration: Histogram<'dag_id' | 'state'>;
  readonly runsEnded: Counter<'dag_id' | 'state'>;
  readonly schedulerPass: Histogram<'result'>;
  /** Database and broker errors this process logged (a lost connection, a failed publish...). */
  readonly errors: Counter<'service' | 'error'>;
  /** Busy and total slots by worker: this process's workers, or every live worker (cluster gauges). */
  readonly workerSlots: Gauge<'worker_id' | 'state'>;
  /** GPUs by worker: held by tasks, and all the worker has. */
  readonly gpus: Gauge<'worker_id' | 'state'>;
  /** Tasks claimed by a worker that wait there for its GPUs. */
  readonly gpuWaiting: Gauge<'worker_id'>;
  /**
   * Sources of workerSlots / gpus / gpuWaiting, each adding its series on a scrape: this process's workers,
   * or the store's view of every worker (which, where both are, is the only one used).
   */
  readonly workerSources: Set<WorkerSource>;
}

export interface WorkerReading {
  workerId: string;
  busy: number;
  slots: number;
  gpusHeld: number;
  gpusTotal: number;
  gpuWaiting: number;
}

export interface WorkerSource {
  /** The store's view of all workers: when present, in-process sources are not added again. */
  cluster: boolean;
  read(): Promise<WorkerReading[]> | WorkerReading[];
}

export interface MetricsOptions {
  /** Node.js process metrics (CPU, memory, event loop lag) as prom-client names them; default true. */
  processMetrics?: boolean;
}

/** A registry with every airtasks instrument registered (in-process ones start empty). */
export function createMetrics(o: MetricsOptions = {}): AirtasksMetrics {
  const registry = new Registry();
  if (o.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const workerSources = new Set<WorkerSource>();
  // Read once per scrape, by the first of the three gauges that is collected.
  let reading: Promise<WorkerReading[]> | null = null;
  const readWorkers = () =>
    (reading ??= (async () => {
      const all = [...workerSources];
      const chosen = all.some((s) => s.cluster) ? all.filter((s) => s.cluster) : all;
      const out: WorkerReading[] = [];
      for (const s of chosen) out.push(...(await s.read()));
      return out;
    })().finally(() => setImmediate(() => (reading = null))));

  const workerSlots = new Gauge({
    name: 'airtasks_worker_slots',
    help: 'Task slots of live workers: state="busy" (running a task) or "total" (its concurrency).',
    labelNames: ['worker_id', 'state'] as const,
    registers,
    async collect() {
      this.reset();
      for (const w of await readWorkers()) {
        this.set({ worker_id: w.workerId, state: 'busy' }, w.busy);
        this.set({ worker_id: w.workerId, state: 'total' }, w.slots);
      }
    },
  });
  const gpus = new Gauge({
    name: 'airtasks_gpus',
    help: 'GPUs of live workers that manage GPUs: state="held" (lent to a task) or "total".',
    labelNames: ['worker_id', 'state'] as const,
    registers,
    async collect() {
      this.reset();
      for (const w of await readWorkers()) {
        if (w.gpusTotal === 0) continue;
        this.set({ worker_id: w.workerId, state: 'held' }, w.gpusHeld);
        this.set({ worker_id: w.workerId, state: 'total' }, w.gpusTotal);
      }
    },
  });
  const gpuWaiting = new Gauge({
    name: 'airtasks_gpu_waiting_tasks',
    help: 'Tasks claimed by a worker that wait there for GPUs other tasks hold.',
    labelNames: ['worker_id'] as const,
    registers,
    async collect() {
      this.reset();
      for (const w of await readWorkers())
        if (w.gpusTotal > 0) this.set({ worker_id: w.workerId }, w.gpuWaiting);
    },
  });

  return {
    registry,
    workerSources,
    workerSlots,
    gpus,
    gpuWaiting,
    triesTotal: new Counter({
      name: 'airtasks_task_tries_total',
      help: 'Tries that ended, by DAG, task and state: success, failed (no retry left), retried (a retry follows), lost (its worker or process host died; run again).',
      labelNames: ['dag_id', 'task_id', 'state'] as const,
      registers,
    }),
    triesStarted: new Counter({
      name: 'airtasks_task_tries_started_total',
      help: 'Tries claimed and started by the workers of this process, by DAG and queue.',
      labelNames: ['dag_id', 'queue'] as const,
      registers,
    }),
    tryDuration: new Histogram({
      name: 'airtasks_task_try_duration_seconds',
      help: 'How long tries ran, from their start in the worker to their stored result, by DAG and state.',
      labelNames: ['dag_id', 'state'] as const,
      buckets: TRY_BUCKETS,
      registers,
    }),
    runsEnded: new Counter({
      name: 'airtasks_runs_ended_total',
      help: 'Runs this process ended, by DAG and state (success, failed, cancelled).',
      labelNames: ['dag_id', 'state'] as const,
      registers,
    }),
    schedulerPass: new Histogram({
      name: 'airtasks_scheduler_pass_duration_seconds',
      help: 'How long a scheduling pass took (starting queued runs, judging the runs that changed); result="ok" or "error".',
      labelNames: ['result'] as const,
      buckets: PASS_BUCKETS,
      registers,
    }),
    errors: new Counter({
      name: 'airtasks_errors_total',
      help: 'Database and broker errors this process met and recovered from (or retries), by service and kind.',
      labelNames: ['service', 'error'] as const,
      registers,
    }),
  };
}

/** The text a scrape answers, and its content type. */
export async function metricsResponse(m: AirtasksMetrics): Promise<{ contentType: string; body: string }> {
  return { contentType: m.registry.contentType, body: await m.registry.metrics() };
}
