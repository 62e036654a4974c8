/**
 * /metrics during a real run: a scheduler and a worker (the daemons the CLI starts, on the PostgreSQL
 * queue) sharing one registry served on a port, as standalone does, and a second worker serving its own.
 * Every series docs/metrics.md lists is there, with values that match what the run did.
 */
import { readFile } from 'node:fs/promises';
import { expect } from 'chai';
import { silentLogger } from '../../src/core/logger.js';
import { startScheduler, startWorker, type Daemon } from '../../src/services/daemons.js';
import {
  createMetrics,
  countingErrors,
  serveMetrics,
  type MetricsServer,
} from '../../src/services/metrics/index.js';
import { withMetricsServer } from '../../src/services/metrics/daemon.js';
import {
  insertDagFile,
  removeDir,
  startRun,
  tempDir,
  waitFor,
  waitForRun,
  writeDagFile,
} from '../helpers/engine.js';
import { DATABASE_URL, freshDb, requireService } from '../helpers/env.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (enough of the format for prom-client's output). */
function parse(text: string): { samples: Sample[]; helped: Set<string> } {
  const samples: Sample[] = [];
  const helped = new Set<string>();
  for (const line of text.split('\n')) {
    const help = /^# HELP (\S+) /.exec(line);
    if (help) helped.add(help[1]!);
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, helped };
}

async function scrape(url: string) {
  const res = await fetch(url);
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const p = parse(text);
  const value = (name: string, labels: Record<string, string> = {}) =>
    p.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      ?.value;
  return { ...p, text, value };
}

describe('metrics', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof freshDb>>;
  let folder: string;
  const daemons: Daemon[] = [];
  let server: MetricsServer;

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    folder = await tempDir('airtasks-metrics-');
  });

  after(async () => {
    for (const d of daemons.reverse()) await d.stop();
    await server?.close();
    await db?.drop();
    await removeDir(folder);
  });

  it('serves every documented series during a run, with values that match it', async () => {
    await writeDagFile(
      folder,
      'metered.ts',
      `export const d = dag('metered');
       const slow = d.bash('slow', { command: 'sleep 7' });
       d.bash('bad', { command: 'exit 1', retries: 1, retryDelay: '1s' });
       d.bash('after', { command: 'true', upstream: slow });`,
    );
    const dags = await insertDagFile(db, folder, 'metered.ts');
    const conn = { databaseUrl: DATABASE_URL, schema: db.schema, dagsFolder: folder, logger: silentLogger };
    const metrics = createMetrics();
    server = await serveMetrics({ metrics, port: 0 });
    daemons.push(await startScheduler({ ...conn, metrics: { metrics }, sweepIntervalMs: 500 }));
    daemons.push(
      await startWorker({ ...conn, metrics: { metrics }, queues: ['worker'], concurrency: 3, gpus: '0,1' }),
    );
    // A worker with a registry of its own, as `airtasks worker --metrics-port` runs.
    const own = await withMetricsServer({ port: 0 }, silentLogger, (m) =>
      startWorker({ ...conn, metrics: m, queues: ['other'], concurrency: 2, gpus: 'none' }),
    );
    daemons.push(own);

    const runId = await startRun(db, dags.get('metered')!);
    // The store's gauges are read at most every 5 s: `slow` runs longer than that, so a reading sees it.
    const during = await waitFor(
      async () => {
        const s = await scrape(server.url);
        return (s.value('airtasks_queue_tasks', { queue: 'worker', state: 'running' }) ?? 0) >= 1
          ? s
          : undefined;
      },
      'a running task in the metrics',
      20_000,
      250,
    );
    expect(during.value('airtasks_runs', { state: 'running' })).to.equal(1);
    const workerSlots = during.samples.filter(
      (s) => s.name === 'airtasks_worker_slots' && s.labels.state === 'total',
    );
    expect(workerSlots.map((s) => s.value).sort()).to.deep.equal([2, 3], 'both live workers, from the store');
    expect(during.value('airtasks_gpus', { state: 'total' })).to.equal(2);
    expect(during.value('airtasks_gpus', { state: 'held' })).to.equal(0);
    expect(during.value('airtasks_queue_workers', { queue: 'worker' })).to.equal(1);
    expect(during.value('airtasks_queue_messages', { queue: 'worker', state: 'ready' })).to.be.a('number');

    expect((await waitForRun(db, runId, 30_000)).state).to.equal('failed');
    // Gauges read from the store are kept 5 s: wait for a fresh reading.
    const end = await waitFor(
      async () => {
        const s = await scrape(server.url);
        return s.value('airtasks_runs', { state: 'failed' }) === 1 ? s : undefined;
      },
      'the failed run in the metrics',
      15_000,
      500,
    );
    const tries = (task: string, state: string) =>
      end.value('airtasks_task_tries_total', { dag_id: 'metered', task_id: task, state });
    expect(tries('slow', 'success')).to.equal(1);
    expect(tries('after', 'success')).to.equal(1);
    expect(tries('bad', 'retried')).to.equal(1);
    expect(tries('bad', 'failed')).to.equal(1);
    expect(end.value('airtasks_task_tries_started_total', { dag_id: 'metered', queue: 'worker' })).to.equal(
      4,
    );
    const ok = { dag_id: 'metered', state: 'success' };
    expect(end.value('airtasks_task_try_duration_seconds_count', ok)).to.equal(2);
    const sum = end.value('airtasks_task_try_duration_seconds_sum', ok)!;
    expect(sum).to.be.within(7, 15, 'sleep 7 and true');
    expect(end.value('airtasks_task_try_duration_seconds_bucket', { ...ok, le: '+Inf' })).to.equal(2);
    expect(end.value('airtasks_runs_ended_total', { dag_id: 'metered', state: 'failed' })).to.equal(1);
    expect(end.value('airtasks_scheduler_pass_duration_seconds_count', { result: 'ok' })).to.be.greaterThan(
      0,
    );
    expect(end.value('airtasks_runs', { state: 'running' })).to.equal(0);

    // Database and broker errors are counted from what the engine logs about them.
    countingErrors(silentLogger, metrics)
      .child({ component: 'x' })
      .warn({ err: 'boom' }, 'broker connection error');
    const errs = await scrape(server.url);
    expect(errs.value('airtasks_errors_total', { service: 'broker', error: 'connection error' })).to.equal(1);

    const documented = [
      ...(await readFile(new URL('../../docs/metrics.md', import.meta.url), 'utf8')).matchAll(
        /^\| `(airtasks_\w+)`/gm,
      ),
    ].map((m) => m[1]!);
    expect(documented.length).to.be.greaterThan(10);
    for (const name of documented) expect(errs.helped, `${name} is served`).to.include(name);
    for (const name of errs.helped)
      if (name.startsWith('airtasks_')) expect(documented, `${name} is documented`).to.include(name);

    // The worker's own registry: its slots, read in the process, and no store-wide gauges.
    const w = await scrape(own.metricsUrl!);
    expect(
      w.samples
        .filter((s) => s.name === 'airtasks_worker_slots')
        .map((s) => s.labels.state)
        .sort(),
    ).to.deep.equal(['busy', 'total']);
    expect(w.value('airtasks_worker_slots', { state: 'total' })).to.equal(2);
    expect(w.helped.has('airtasks_runs')).to.equal(false);
    expect(w.helped.has('process_cpu_user_seconds_total')).to.equal(true);
    const other = await fetch(own.metricsUrl!.replace('/metrics', '/other'));
    expect(other.status).to.equal(404);
  });
});
