/**
 * B2 throughput with full durability: a large fan-out DAG of no-op tasks, and many small runs. Every
 * state in Postgres, persistent messages with publisher confirms, acks after commit. Peers get the same
 * worker concurrency and the durability described in their modules. Also peak memory of scheduler and worker
 * (its whole process tree).
 */
import { availableParallelism } from 'node:os';
import { fanOutDagSource, memoryFigures, type Benchmark, type BenchContext } from './context.js';
import { withEnv, type ProcessStats } from './engine.js';
import { celeryFanOut, celeryMissing } from './peers/celery.js';
import { graphileFanOut, type GraphileFanOut } from './peers/graphile.js';
import { cpuMsOf, cpuMsOfPids } from './proc-cpu.js';
import { processTree } from './process-tree.js';
import { atLeast, skipped, type Figure } from './stats.js';

export const CONCURRENCY = 16;

interface Outcome {
  tasksPerSecond: number;
  scheduler: ProcessStats;
  worker: ProcessStats;
  schedulerCpuSeconds: number;
  statementsPerTask: number;
  /** CPU per task (µs) of each process that works for it, from the trigger to the last run's end. */
  cpuUsPerTask: CpuPerTask;
}

interface CpuPerTask {
  scheduler: number;
  worker: number;
  /** The worker's process host and any process it started (none for no-op node tasks). */
  host: number;
  postgres: number;
  rabbitmq: number;
}

/** CPU milliseconds so far of the machine's Postgres and RabbitMQ and of the engine's processes. */
function cpuNow(schedulerPid: number, workerPid: number, hostPids: number[]): CpuPerTask {
  return {
    scheduler: cpuMsOfPids([schedulerPid]),
    worker: cpuMsOfPids([workerPid]),
    host: cpuMsOfPids(hostPids),
    postgres: cpuMsOf('postgres'),
    // RabbitMQ's Erlang VM.
    rabbitmq: cpuMsOf('beam.smp'),
  };
}

/** Runs `runs` runs of a DAG of `tasks` independent no-op tasks, all triggered at once. */
export async function airtasksFanOut(ctx: BenchContext, tasks: number, runs: number): Promise<Outcome> {
  return withEnv(async (e) => {
    const dag = (await e.addDagFile('fan.ts', fanOutDagSource('fan', tasks))).get('fan')!;
    const warm = (await e.addDagFile('warm.ts', fanOutDagSource('warm', 1))).get('warm')!;
    const s = await e.scheduler();
    const w = await e.worker(CONCURRENCY);
    // Warm-up: the worker imports DAG files on first use.
    await e.waitRuns(await e.trigger(warm), 30_000);
    const s0 = await s.stats();
    const w0 = await w.stats();
    // The process host was started by the warm-up's node task.
    const hostPids = processTree(w.pid).slice(1);
    const cpu0 = cpuNow(s.pid, w.pid, hostPids);
    const ids = await e.trigger(dag, runs);
    await e.waitRuns(ids, 600_000);
    const cpu1 = cpuNow(s.pid, w.pid, hostPids);
    const times = await e.runTimes(ids);
    const start = Math.min(...times.map((t) => t.created));
    const end = Math.max(...times.map((t) => t.ended));
    const s1 = await s.stats();
    const w1 = await w.stats();
    const n = tasks * runs;
    ctx.log(`  airtasks: ${n} tasks in ${((end - start) / 1000).toFixed(1)} s`);
    return {
      tasksPerSecond: n / ((end - start) / 1000),
      scheduler: s1,
      worker: w1,
      schedulerCpuSeconds: s1.cpuSeconds - s0.cpuSeconds,
      statementsPerTask: (s1.statements - s0.statements + w1.statements - w0.statements) / n,
      cpuUsPerTask: perTask(cpu0, cpu1, n),
    };
  });
}

/** Microseconds per task between two readings of cpuNow (milliseconds). */
function perTask(a: CpuPerTask, b: CpuPerTask, tasks: number): CpuPerTask {
  const us = (k: keyof CpuPerTask) => ((b[k] - a[k]) * 1000) / tasks;
  return {
    scheduler: us('scheduler'),
    worker: us('worker'),
    host: us('host'),
    postgres: us('postgres'),
    rabbitmq: us('rabbitmq'),
  };
}

export const b2: Benchmark = {
  id: 'b2',
  title: 'B2 throughput',
  timeoutMs: (quick) => (quick ? 120_000 : 420_000),
  async run(ctx) {
    const B = 'B2 throughput';
    const big = ctx.quick ? 4000 : 20_000;
    const fan = await airtasksFanOut(ctx, big, 1);
    const small = await airtasksFanOut(ctx, 10, ctx.quick ? 100 : 500);
    const figures: Figure[] = [];
    const fanFig: Figure = {
      bench: B,
      metric: `airtasks ${big}-task fan-out`,
      value: fan.tasksPerSecond,
      unit: 'tasks/s',
      target: atLeast(fan.tasksPerSecond, 2000, '>= 2,000/s'),
    };
    const smallFig: Figure = {
      bench: B,
      metric: `airtasks ${ctx.quick ? 100 : 500} runs x 10 tasks`,
      value: small.tasksPerSecond,
      unit: 'tasks/s',
      target: atLeast(small.tasksPerSecond, 2000, '>= 2,000/s'),
    };
    figures.push(fanFig, smallFig);
    const peerRates: Array<{ name: string; rate: number }> = [];
    let gw: GraphileFanOut | null = null;
    ctx.log('  graphile-worker fan-out');
    try {
      gw = await graphileFanOut(big, CONCURRENCY);
      peerRates.push({ name: 'graphile-worker', rate: gw.tasksPerSecond });
      figures.push({
        bench: B,
        metric: `graphile-worker ${big} jobs (concurrency ${CONCURRENCY})`,
        value: gw.tasksPerSecond,
        unit: 'tasks/s',
      });
    } catch (err) {
      figures.push(skipped(B, 'graphile-worker fan-out', `failed: ${(err as Error).message}`));
    }
    ctx.log('  celery fan-out');
    const missing = await celeryMissing();
    if (missing) figures.push(skipped(B, 'celery fan-out', missing));
    else {
      try {
        const c = await celeryFanOut(big, CONCURRENCY, ctx.quick ? 90_000 : 300_000);
        peerRates.push({ name: 'celery', rate: c });
        figures.push({
          bench: B,
          metric: `celery ${big} tasks (prefork ${CONCURRENCY})`,
          value: c,
          unit: 'tasks/s',
        });
      } catch (err) {
        figures.push(skipped(B, 'celery fan-out', `failed: ${(err as Error).message}`));
      }
    }
    const graphile = peerRates.find((p) => p.name === 'graphile-worker')?.rate;
    for (const f of figures.slice(2))
      if (Number.isFinite(f.value)) f.baseline = { name: 'airtasks fan-out', value: fan.tasksPerSecond };
    // The throughput targets: ahead of graphile-worker by a wide margin, in the same run.
    if (graphile !== undefined) {
      fanFig.baseline = { name: 'graphile-worker', value: graphile };
      fanFig.target = {
        text: '>= 2.5x graphile-worker',
        met: fan.tasksPerSecond >= 2000 && fan.tasksPerSecond >= 2.5 * graphile,
      };
      smallFig.baseline = { name: 'graphile-worker', value: graphile };
      smallFig.target = { text: '>= 2x graphile-worker', met: small.tasksPerSecond >= 2 * graphile };
    } else smallFig.baseline = { name: 'airtasks fan-out', value: fan.tasksPerSecond };
    const pg = { name: 'pg commit', value: ctx.floors.pgCommitMs };
    figures.push(
      {
        bench: B,
        metric: 'scheduler CPU per 1,000 tasks (fan-out)',
        value: (fan.schedulerCpuSeconds / big) * 1000,
        unit: 's',
      },
      { bench: B, metric: 'SQL statements per task (fan-out)', value: fan.statementsPerTask, unit: '' },
      {
        bench: B,
        metric: 'time per task (fan-out)',
        value: 1000 / fan.tasksPerSecond,
        unit: 'ms',
        baseline: pg,
      },
      ...cpuFigures(fan.cpuUsPerTask, gw),
      ...memoryFigures(ctx, 'B2 fan-out', fan.scheduler, fan.worker),
    );
    return figures;
  },
};

/**
 * Where the fan-out's CPU goes, per task, against graphile-worker's per job in the same run, and what the
 * 2.5x target leaves per task when the machine's cores are all busy: the budget no sum of processes can
 * exceed and still reach it.
 */
function cpuFigures(ours: CpuPerTask, gw: GraphileFanOut | null): Figure[] {
  const B = 'B2 throughput';
  const total = Object.values(ours).reduce((a, b) => a + b, 0);
  const us = (v: number) => Math.round(v).toLocaleString('en-US');
  const out: Figure[] = [
    {
      bench: B,
      metric:
        `airtasks CPU per task (fan-out): worker ${us(ours.worker)}, process host ${us(ours.host)}, ` +
        `scheduler ${us(ours.scheduler)}, Postgres ${us(ours.postgres)}, RabbitMQ ${us(ours.rabbitmq)}`,
      value: total,
      unit: 'µs',
    },
  ];
  if (!gw) return out;
  const gwTotal = gw.cpuUsPerJob.node + gw.cpuUsPerJob.postgres;
  out[0]!.baseline = { name: 'graphile-worker', value: gwTotal };
  const cores = availableParallelism();
  out.push(
    {
      bench: B,
      metric: `graphile-worker CPU per job: its process ${us(gw.cpuUsPerJob.node)}, Postgres ${us(gw.cpuUsPerJob.postgres)}`,
      value: gwTotal,
      unit: 'µs',
    },
    {
      bench: B,
      metric: `CPU per task at 2.5x graphile-worker (${cores} cores busy)`,
      value: (cores * 1e6) / (2.5 * gw.tasksPerSecond),
      unit: 'µs',
    },
  );
  return out;
}
