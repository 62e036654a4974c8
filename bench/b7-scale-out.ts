/**
 * B7 scale-out: the same fan-out of no-op tasks run by 1, 2, 4 and 8 worker processes (with the same
 * total concurrency, 16, split among them), by 4 workers of 16 each (a control: more total concurrency),
 * and by 4 workers with 2 schedulers. Per task: SQL statements the engine sent, transactions Postgres
 * ran, Postgres CPU (every postgres process, from /proc), and the share of time its backends waited on
 * locks or on WAL flushes. On a 2-core machine throughput cannot grow with processes; the per-task costs
 * and the waits are what must stay flat for more processes on a bigger database to pay off.
 */
import { randomBytes } from 'node:crypto';
import type { Benchmark, BenchContext } from './context.js';
import { DbWatch, type WaitShares } from './db-watch.js';
import { BROKER_URL, DATABASE_URL, EngineProcess, withEnv, type BenchEnv } from './engine.js';
import { cpuMsOf } from './proc-cpu.js';
import type { Figure } from './stats.js';

export interface Layout {
  workers: number;
  /** Per worker. */
  concurrency: number;
  schedulers: number;
}

export function layoutName(l: Layout): string {
  return `${l.workers}w x${l.concurrency}${l.schedulers > 1 ? `, ${l.schedulers} schedulers` : ''}`;
}

export interface ScaleOutcome {
  tasksPerSecond: number;
  statementsPerTask: number;
  transactionsPerTask: number;
  walFlushesPerTask: number;
  walBytesPerTask: number;
  postgresCpuMsPerTask: number;
  /** The scheduler and worker processes themselves: the process hosts running node tasks are apart. */
  engineCpuMsPerTask: number;
  waits: WaitShares;
}

/** Two DAGs in one file, so that the warm-up run makes every worker import the file the measured run uses. */
function source(tasks: number, warmTasks: number): string {
  return `
const fan = (id, n) => {
  const d = dag(id);
  for (let i = 0; i < n; i++) d.node('t' + i, { run: () => null });
  return d;
};
export const warm = fan('warm', ${warmTasks});
export const big = fan('fan', ${tasks});
`;
}

async function start(e: BenchEnv, app: string, env: Record<string, string>): Promise<EngineProcess> {
  const p = await EngineProcess.start({
    BENCH_DATABASE_URL: DATABASE_URL,
    BENCH_BROKER_URL: BROKER_URL,
    BENCH_SCHEMA: e.schema,
    BENCH_PREFIX: e.prefix,
    BENCH_DAGS: e.folder,
    BENCH_APP_NAME: app,
    ...env,
  });
  e.procs.push(p);
  return p;
}

export async function scaleOut(ctx: BenchContext, layout: Layout, tasks: number): Promise<ScaleOutcome> {
  return withEnv(async (e) => {
    const dags = await e.addDagFile('fan.ts', source(tasks, layout.workers * layout.concurrency * 4));
    // One prefix per measurement: the watch counts only this layout's connections.
    const app = `b7-${randomBytes(3).toString('hex')}-`;
    const procs: EngineProcess[] = [];
    for (let i = 0; i < layout.schedulers; i++)
      procs.push(await start(e, `${app}s${i}`, { BENCH_ROLE: 'scheduler', BENCH_PARSE: '0' }));
    for (let i = 0; i < layout.workers; i++)
      procs.push(
        await start(e, `${app}w${i}`, {
          BENCH_ROLE: 'worker',
          BENCH_CONCURRENCY: String(layout.concurrency),
          BENCH_MAX_CONNECTIONS: String(Math.max(10, Math.min(40, layout.concurrency + 4))),
        }),
      );
    await e.waitRuns(await e.trigger(dags.get('warm')!), 60_000);
    const before = await Promise.all(procs.map((p) => p.stats()));
    const watch = new DbWatch(DATABASE_URL, app);
    await watch.start();
    const pg0 = cpuMsOf('postgres');
    const ids = await e.trigger(dags.get('fan')!);
    await e.waitRuns(ids, 600_000);
    const pg1 = cpuMsOf('postgres');
    const waits = await watch.stop();
    const after = await Promise.all(procs.map((p) => p.stats()));
    const [t] = await e.runTimes(ids);
    const seconds = (t!.ended - t!.created) / 1000;
    const sum = (k: 'statements' | 'cpuSeconds') => after.reduce((a, s, i) => a + s[k] - before[i]![k], 0);
    const out: ScaleOutcome = {
      tasksPerSecond: tasks / seconds,
      statementsPerTask: sum('statements') / tasks,
      transactionsPerTask: waits.transactions / tasks,
      walFlushesPerTask: waits.walFlushes / tasks,
      walBytesPerTask: waits.walBytes / tasks,
      postgresCpuMsPerTask: (pg1 - pg0) / tasks,
      engineCpuMsPerTask: (sum('cpuSeconds') * 1000) / tasks,
      waits,
    };
    const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
    ctx.log(
      `  ${layoutName(layout)}: ${out.tasksPerSecond.toFixed(0)} tasks/s, ${out.statementsPerTask.toFixed(2)} statements/task, ` +
        `${out.transactionsPerTask.toFixed(2)} xacts/task, ${out.walFlushesPerTask.toFixed(3)} WAL flushes/task, ${out.walBytesPerTask.toFixed(0)} WAL bytes/task, Postgres CPU ${out.postgresCpuMsPerTask.toFixed(3)} ms/task, ` +
        `engine CPU ${out.engineCpuMsPerTask.toFixed(3)} ms/task; busy backends: lock ${pct(waits.lock)}, WAL ${pct(waits.wal)}, ` +
        `other waits ${pct(waits.otherWaits)}, client ${pct(waits.client)}, running ${pct(waits.running)} ` +
        `(${waits.busySamples} samples); connections ${waits.maxConnections}, at most ${waits.maxConnectionsPerProcess} per process`,
    );
    return out;
  });
}

export const LAYOUTS: Layout[] = [
  { workers: 1, concurrency: 16, schedulers: 1 },
  { workers: 2, concurrency: 8, schedulers: 1 },
  { workers: 4, concurrency: 4, schedulers: 1 },
  { workers: 8, concurrency: 2, schedulers: 1 },
  { workers: 4, concurrency: 16, schedulers: 1 },
  { workers: 4, concurrency: 4, schedulers: 2 },
];

// The per-task figures, each against the first layout's.
const PER_TASK: Array<[metric: string, unit: string, of: (x: ScaleOutcome) => number]> = [
  ['throughput', 'tasks/s', (x) => x.tasksPerSecond],
  ['SQL statements/task', '', (x) => x.statementsPerTask],
  ['Postgres transactions/task', '', (x) => x.transactionsPerTask],
  ['WAL flushes/task', '', (x) => x.walFlushesPerTask],
  ['WAL written/task', 'KiB', (x) => x.walBytesPerTask / 1024],
  ['Postgres CPU/task', 'ms', (x) => x.postgresCpuMsPerTask],
  ['scheduler + worker processes CPU/task (not process hosts)', 'ms', (x) => x.engineCpuMsPerTask],
];

export const b7: Benchmark = {
  id: 'b7',
  title: 'B7 scale-out',
  timeoutMs: (quick) => (quick ? 240_000 : 900_000),
  async run(ctx) {
    const B = 'B7 scale-out';
    const tasks = ctx.quick ? 4000 : 20_000;
    const layouts = ctx.quick
      ? LAYOUTS.filter((l) => l.concurrency * l.workers === 16 && l.workers !== 2)
      : LAYOUTS;
    const figures: Figure[] = [];
    let base: ScaleOutcome | undefined;
    for (const l of layouts) {
      const o = await scaleOut(ctx, l, tasks);
      base ??= o;
      const name = layoutName(l);
      const vs = (value: number) => (o === base ? undefined : { name: layoutName(layouts[0]!), value });
      figures.push(
        ...PER_TASK.map(([metric, unit, of]): Figure => ({
          bench: B,
          metric: `${name}: ${metric}`,
          value: of(o),
          unit,
          baseline: vs(of(base!)),
        })),
        { bench: B, metric: `${name}: backends waiting on locks`, value: o.waits.lock * 100, unit: '%' },
        { bench: B, metric: `${name}: backends waiting on WAL`, value: o.waits.wal * 100, unit: '%' },
        {
          bench: B,
          metric: `${name}: connections per process (max)`,
          value: o.waits.maxConnectionsPerProcess,
          unit: '',
        },
      );
    }
    return figures;
  },
};
