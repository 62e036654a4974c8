/**
 * graphile-worker, a peer in the same invocation: a Postgres job queue (every job a committed row,
 * deleted on completion in a commit). Runs in its own schema, with default settings except the
 * concurrency stated by each benchmark.
 */
import { Logger, makeWorkerUtils, run, type Task } from 'graphile-worker';
import pg from 'pg';
import { DATABASE_URL, uniqueName } from '../engine.js';
import { cpuMsOf } from '../proc-cpu.js';

const quiet = new Logger(() => () => undefined);
const now = () => performance.timeOrigin + performance.now();

async function withSchema<T>(fn: (schema: string) => Promise<T>): Promise<T> {
  const schema = uniqueName('bench_gw');
  try {
    return await fn(schema);
  } finally {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await c.end();
  }
}

export interface ChainTimes {
  /** Per run: start and end (ms) of each link, in order. */
  runs: Array<{ triggered: number; links: Array<{ start: number; end: number }> }>;
}

/** Chains of `length` jobs, each adding the next one (default settings: concurrency 1). */
export async function graphileChain(length: number, runs: number): Promise<ChainTimes> {
  return withSchema(async (schema) => {
    let current: Array<{ start: number; end: number }> = [];
    let done: () => void = () => undefined;
    const link: Task = async (payload, helpers) => {
      const start = now();
      const { i } = payload as { i: number };
      if (i + 1 < length) await helpers.addJob('link', { i: i + 1 });
      current[i] = { start, end: now() };
      if (i + 1 === length) setImmediate(done);
    };
    const runner = await run({
      connectionString: DATABASE_URL,
      schema,
      taskList: { link },
      noHandleSignals: true,
      logger: quiet,
    });
    const utils = await makeWorkerUtils({ connectionString: DATABASE_URL, schema, logger: quiet });
    const out: ChainTimes = { runs: [] };
    try {
      for (let r = 0; r <= runs; r++) {
        current = [];
        const finished = new Promise<void>((res) => (done = res));
        const triggered = now();
        await utils.addJob('link', { i: 0 });
        await finished;
        if (r > 0) out.runs.push({ triggered, links: current }); // run 0 warms up
      }
    } finally {
      await utils.release();
      await runner.stop();
    }
    return out;
  });
}

/** A fan-out's rate, and the CPU its jobs cost per job: graphile-worker's Node process and Postgres. */
export interface GraphileFanOut {
  tasksPerSecond: number;
  cpuUsPerJob: { node: number; postgres: number };
}

/**
 * `count` no-op jobs added in one batch; tasks per second from the add to the last completion. The worker
 * runs in this process, which does nothing else meanwhile, so its CPU over that time is graphile-worker's
 * (the adding included).
 */
export async function graphileFanOut(count: number, concurrency: number): Promise<GraphileFanOut> {
  return withSchema(async (schema) => {
    let left = count;
    let done: () => void = () => undefined;
    const noop: Task = async () => {
      if (--left === 0) setImmediate(done);
    };
    const runner = await run({
      connectionString: DATABASE_URL,
      schema,
      concurrency,
      taskList: { noop },
      noHandleSignals: true,
      logger: quiet,
    });
    const utils = await makeWorkerUtils({ connectionString: DATABASE_URL, schema, logger: quiet });
    try {
      const finished = new Promise<void>((res) => (done = res));
      const pg0 = cpuMsOf('postgres');
      const cpu0 = process.cpuUsage();
      const t0 = now();
      for (let i = 0; i < count; i += 1000)
        await utils.addJobs(
          Array.from({ length: Math.min(1000, count - i) }, (_, k) => ({
            identifier: 'noop',
            payload: { i: i + k },
          })),
        );
      await finished;
      // The last job's completion commits right after its function returns.
      const seconds = (now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      return {
        tasksPerSecond: count / seconds,
        cpuUsPerJob: {
          node: (cpu.user + cpu.system) / count,
          postgres: ((cpuMsOf('postgres') - pg0) * 1000) / count,
        },
      };
    } finally {
      await utils.release();
      await runner.stop();
    }
  });
}
