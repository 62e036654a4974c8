/**
 * The harness of the airtasks benchmarks: each benchmark gets its own Postgres schema, RabbitMQ prefix
 * and dags folder (cleaned up afterwards), and runs the real scheduler and worker as separate processes
 * (bench/daemon.ts), so that their CPU time, memory and SQL statements are their own.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { RabbitBroker } from '../src/engine/broker/rabbitmq.js';
import { dagsOfModule } from '../src/engine/dag/dags-of-module.js';
import { dagHash } from '../src/engine/dag/serialize.js';
import { upsertDag } from '../src/engine/store/dags.js';
import { Db, type Listener } from '../src/engine/store/db.js';
import { migrate } from '../src/engine/store/migrate.js';
import { createRuns } from '../src/engine/store/runs.js';
import { publishOutbox } from '../src/engine/publish-outbox.js';
import { createRun } from '../src/engine/start-run.js';
import { silentLogger } from '../src/core/logger.js';
import type { SerializedDag } from '../src/core/dag-model.js';
import { TreePeak, type TreeMemory } from './process-tree.js';

export const DATABASE_URL =
  process.env.AIRTASKS_BENCH_DATABASE_URL ??
  process.env.AIRTASKS_TEST_DATABASE_URL ??
  'postgres://postgres@127.0.0.1:5432/test';
export const BROKER_URL =
  process.env.AIRTASKS_BENCH_BROKER_URL ??
  process.env.AIRTASKS_TEST_BROKER_URL ??
  'amqp://guest:guest@127.0.0.1:5672';

/**
 * What the benchmarks' DAG files import `dag` from: the built package, as a project's DAGs import
 * 'airtasks'. The engine processes run the built code too (see daemon.mjs); `npm run bench` builds first.
 */
export const AIRTASKS_URL = new URL('../dist/index.js', import.meta.url).href;
const DAEMON = fileURLToPath(new URL('./daemon.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../bin/run.js', import.meta.url));
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * The Node flags `airtasks` runs with: those of bin/run.js's first line (`#!/usr/bin/env -S node <flags>`),
 * so that the engine processes here run as the CLI's do.
 */
export const CLI_NODE_FLAGS = readFileSync(new URL('../bin/run.js', import.meta.url), 'utf8')
  .split('\n', 1)[0]!
  .replace(/^#!.*?\bnode\b/, '')
  .split(' ')
  .filter(Boolean);

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export interface ProcessStats {
  cpuSeconds: number;
  /** The process's own peak RSS (the kernel's high-water mark). */
  maxRssMiB: number;
  statements: number;
  /** Peaks of the process and its descendants (a worker's process host and the commands it started). */
  tree: TreeMemory;
}

/** A JSON log line below warning level (pino's levels: 40 is warn). */
function isRoutineLogLine(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    return (JSON.parse(line) as { level?: number }).level! < 40;
  } catch {
    return false;
  }
}

/** A scheduler or worker process of the benchmark. */
export class EngineProcess {
  private readonly memory: TreePeak;

  private constructor(private readonly child: ChildProcess) {
    this.memory = new TreePeak(child.pid!);
  }

  static async start(env: Record<string, string>): Promise<EngineProcess> {
    const child = fork(DAEMON, [], {
      // BENCH_CPU_PROF=<dir>: each engine process writes a CPU profile there when it stops.
      execArgv: [
        ...CLI_NODE_FLAGS,
        ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
      ],
      cwd: ROOT,
      env: { ...process.env, ...env },
      // Its log, read as a service manager would; only warnings and worse (and whatever is not a log line,
      // such as a crash's stack) are shown.
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      if (!isRoutineLogLine(line)) process.stderr.write(`[${env.BENCH_ROLE}] ${line}\n`);
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`${env.BENCH_ROLE} exited with code ${code}`)));
    });
    return new EngineProcess(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  stats(): Promise<ProcessStats> {
    this.memory.sample();
    return new Promise((resolve) => {
      this.child.once('message', (m) =>
        resolve({ ...(m as Omit<ProcessStats, 'tree'>), tree: { ...this.memory.peak } }),
      );
      this.child.send('stats');
    });
  }

  async stop(): Promise<void> {
    this.memory.stop();
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.send('stop');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

export interface StoredDag {
  dagId: string;
  hash: string;
  version: SerializedDag;
}

/** One benchmark's isolated world: schema, broker prefix, dags folder, engine processes. */
export class BenchEnv {
  readonly schema = uniqueName('bench');
  readonly prefix = `${this.schema}.`;
  readonly db: Db;
  readonly procs: EngineProcess[] = [];
  folder = '';

  private constructor() {
    this.db = new Db({ url: DATABASE_URL, schema: this.schema });
  }

  static async open(): Promise<BenchEnv> {
    const e = new BenchEnv();
    await migrate(e.db);
    e.folder = await mkdtemp(path.join(os.tmpdir(), 'airtasks-bench-'));
    // As in a project made by `airtasks init`: its DAG files are ES modules.
    await writeFile(path.join(e.folder, 'package.json'), '{ "type": "module" }\n');
    return e;
  }

  private baseEnv(): Record<string, string> {
    return {
      BENCH_DATABASE_URL: DATABASE_URL,
      BENCH_BROKER_URL: BROKER_URL,
      BENCH_SCHEMA: this.schema,
      BENCH_PREFIX: this.prefix,
      BENCH_DAGS: this.folder,
    };
  }

  async scheduler(opts: { parse?: boolean; parseTimeoutMs?: number } = {}): Promise<EngineProcess> {
    const p = await EngineProcess.start({
      ...this.baseEnv(),
      BENCH_ROLE: 'scheduler',
      BENCH_PARSE: opts.parse ? '1' : '0',
      BENCH_PARSE_TIMEOUT_MS: String(opts.parseTimeoutMs ?? 60_000),
    });
    this.procs.push(p);
    return p;
  }

  async worker(concurrency: number): Promise<EngineProcess> {
    const p = await EngineProcess.start({
      ...this.baseEnv(),
      BENCH_ROLE: 'worker',
      BENCH_CONCURRENCY: String(concurrency),
      BENCH_MAX_CONNECTIONS: String(Math.max(10, Math.min(40, concurrency + 4))),
    });
    this.procs.push(p);
    return p;
  }

  /** Writes a DAG file (`body` follows an import of `dag`) and stores its DAGs, as the processor would. */
  async addDagFile(fileloc: string, body: string): Promise<Map<string, StoredDag>> {
    const file = path.join(this.folder, fileloc);
    await writeFile(file, `import { dag } from ${JSON.stringify(AIRTASKS_URL)};\n${body}`);
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    const out = new Map<string, StoredDag>();
    for (const d of dagsOfModule(mod)) {
      const serialized = d.serialize(fileloc);
      const hash = dagHash(serialized);
      await upsertDag(this.db, serialized, hash);
      out.set(d.id, { dagId: d.id, hash, version: serialized });
    }
    return out;
  }

  /**
   * Creates `count` runs of the DAG; returns their ids. One run is created as `airtasks trigger` creates it
   * (started at once when it can be, its first messages sent by the scheduler, or by this process with
   * `publish`, as the API does); more go in one statement, queued for the scheduler.
   */
  async trigger(dag: StoredDag, count = 1, o: { publish?: boolean } = {}): Promise<string[]> {
    const ids = Array.from({ length: count }, () => uniqueName('run'));
    if (count === 1) {
      const run = { runId: ids[0]!, dagId: dag.dagId, dagHash: dag.hash, conf: {} };
      const broker = o.publish ? await this.broker() : null;
      await createRun(
        this.db,
        run,
        dag.version,
        broker && ((rows) => publishOutbox(broker, this.db, rows, silentLogger)),
      );
      return ids;
    }
    await createRuns(
      this.db,
      ids.map((runId) => ({ runId, dagId: dag.dagId, dagHash: dag.hash, conf: {} })),
      this.db.channel('events'),
    );
    return ids;
  }

  /** Triggers one run of the DAG as a user does, with `airtasks trigger dag` in a process of its own. */
  async triggerCli(dag: StoredDag): Promise<string> {
    const runId = uniqueName('run');
    const child = spawn(
      process.execPath,
      [...CLI_NODE_FLAGS, CLI, 'trigger', 'dag', dag.dagId, '--run-id', runId],
      {
        cwd: this.folder,
        env: {
          ...process.env,
          AIRTASKS_DATABASE_URL: DATABASE_URL,
          AIRTASKS_BROKER_URL: BROKER_URL,
          AIRTASKS_DB_SCHEMA: this.schema,
          AIRTASKS_QUEUE_PREFIX: this.prefix,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0) throw new Error(`airtasks trigger exited with code ${code}: ${stderr.trim()}`);
    return runId;
  }

  private ends: Listener | null = null;
  private readonly endWaiters = new Set<(runId: string) => void>();

  /**
   * Resolves when every run has ended (NOTIFY, with a poll as a safety net); throws after timeoutMs. The
   * LISTEN connection is opened once per environment: a new one per wait would start a Postgres backend
   * while the run being measured is under way.
   */
  async waitRuns(runIds: string[], timeoutMs: number): Promise<void> {
    const left = new Set(runIds);
    let wake: () => void = () => undefined;
    const onEnd = (runId: string) => {
      if (left.delete(runId) && left.size === 0) wake();
    };
    this.ends ??= this.db.listen([this.db.channel('events')], (_ch, payload) => {
      if (payload.startsWith('run:')) for (const w of this.endWaiters) w(payload.slice(4));
    });
    this.endWaiters.add(onEnd);
    await this.ends.ready;
    const deadline = Date.now() + timeoutMs;
    try {
      while (left.size > 0) {
        const r = await this.db.query<{ run_id: string; state: string }>(
          `SELECT run_id, state FROM dag_runs WHERE run_id = ANY($1)`,
          [[...left]],
        );
        for (const x of r.rows) {
          if (x.state === 'failed' || x.state === 'cancelled')
            throw new Error(`run ${x.run_id} ended ${x.state}`);
          if (x.state === 'success') left.delete(x.run_id);
        }
        if (left.size === 0) break;
        if (Date.now() > deadline)
          throw new Error(`${left.size} of ${runIds.length} runs not done after ${timeoutMs} ms`);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 500);
        });
      }
    } finally {
      this.endWaiters.delete(onEnd);
    }
  }

  /** The outputs of every task of the runs (tasks that return what they measured). */
  async taskOutputs<T>(runIds: string[]) {
    return (
      await this.db.query<{ run_id: string; task_id: string; output: T }>(
        `SELECT run_id, task_id, output FROM task_instances WHERE run_id = ANY($1) AND task_id NOT LIKE '@%'`,
        [runIds],
      )
    ).rows;
  }

  async runTimes(runIds: string[]) {
    return (
      await this.db.query<{ run_id: string; created: number; ended: number }>(
        `SELECT run_id, extract(epoch FROM created_at) * 1000 AS created,
                extract(epoch FROM ended_at) * 1000 AS ended FROM dag_runs WHERE run_id = ANY($1)`,
        [runIds],
      )
    ).rows.map((r) => ({ ...r, created: Number(r.created), ended: Number(r.ended) }));
  }

  private publisher: RabbitBroker | null = null;

  /** A broker connection of the harness's own, for runs it starts and publishes itself. */
  private async broker(): Promise<RabbitBroker> {
    return (this.publisher ??= await RabbitBroker.connect({ url: BROKER_URL, prefix: this.prefix }));
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.procs.map((p) => p.stop()));
    await this.publisher?.close().catch(() => undefined);
    await this.ends?.close().catch(() => undefined);
    await this.db.close().catch(() => undefined);
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`).catch(() => undefined);
    await c.end();
    const b = await RabbitBroker.connect({ url: BROKER_URL, prefix: this.prefix });
    await b.deleteQueues(['worker']);
    await b.close();
    if (this.folder) await rm(this.folder, { recursive: true, force: true });
  }
}

/** Runs fn with a fresh environment that is always cleaned up. */
export async function withEnv<T>(fn: (e: BenchEnv) => Promise<T>): Promise<T> {
  const e = await BenchEnv.open();
  try {
    return await fn(e);
  } finally {
    await e.close();
  }
}

/** Rejects after ms with a message naming what took too long. */
export async function timeout<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>(
        (_, rej) => (t = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms)),
      ),
    ]);
  } finally {
    clearTimeout(t);
  }
}

export function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}
