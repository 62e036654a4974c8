/**
 * Helpers for engine integration tests: temporary DAG folders, storing DAGs without the processor,
 * creating runs and waiting for them to finish.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { Dag } from '../../src/engine/dag/builder.js';
import { dagsOfModule } from '../../src/engine/dag/dags-of-module.js';
import { dagHash } from '../../src/engine/dag/serialize.js';
import type { SerializedDag } from '../../src/core/dag-model.js';
import type { Db } from '../../src/engine/store/db.js';
import { upsertDag } from '../../src/engine/store/dags.js';
import { createRuns, getRun, type RunRow } from '../../src/engine/store/runs.js';
import { TERMINAL_RUN_STATES } from '../../src/core/states.js';
import { listTaskInstances } from '../../src/engine/store/task-instances.js';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { Scheduler, type SchedulerOptions } from '../../src/engine/scheduler/scheduler.js';
import { Worker, type WorkerOptions } from '../../src/engine/worker/worker.js';
import { BROKER_URL, DATABASE_URL, freshDb, uniqueName } from './env.js';
import { sleep } from '../../src/core/backoff.js';
export { sleep };

/** Absolute file URL of the DAG authoring API, for DAG files written by tests (no build needed). */
export const BUILDER_URL = new URL('../../src/engine/dag/builder.ts', import.meta.url).href;

/** The first line of a test DAG file: imports `dag` from the sources. */
export const DAG_IMPORT = `import { dag } from ${JSON.stringify(BUILDER_URL)};\n`;

export async function tempDir(prefix = 'airtasks-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function removeDir(dir: string | undefined) {
  if (dir) await rm(dir, { recursive: true, force: true });
}

/** Writes a DAG file into the folder; `body` follows an import of `dag`. Returns the file's path. */
export async function writeDagFile(folder: string, fileloc: string, body: string): Promise<string> {
  const file = path.join(folder, fileloc);
  await writeFile(file, DAG_IMPORT + body);
  return file;
}

export interface StoredDag {
  dagId: string;
  hash: string;
  serialized: SerializedDag;
}

/** Stores a DAG built in this process, as the DAG processor would. */
export async function insertDag(db: Db, d: Dag<unknown>, fileloc = `${d.id}.ts`): Promise<StoredDag> {
  const serialized = d.serialize(fileloc);
  const hash = dagHash(serialized);
  await upsertDag(db, serialized, hash);
  return { dagId: d.id, hash, serialized };
}

/**
 * Imports a DAG file of a folder in this process and stores its DAGs (so node tasks, which the worker
 * loads from the same file, find their functions). Faster than the processor's child process.
 */
export async function insertDagFile(
  db: Db,
  folder: string,
  fileloc: string,
): Promise<Map<string, StoredDag>> {
  const mod = (await import(pathToFileURL(path.join(folder, fileloc)).href)) as Record<string, unknown>;
  const out = new Map<string, StoredDag>();
  for (const d of dagsOfModule(mod)) out.set(d.id, await insertDag(db, d, fileloc));
  if (out.size === 0) throw new Error(`${fileloc} defines no DAG`);
  return out;
}

/** Creates a queued run (and wakes the schedulers); returns its id. */
export async function startRun(db: Db, dag: StoredDag, conf: Record<string, unknown> = {}): Promise<string> {
  const runId = uniqueName('run');
  const { created } = await createRuns(
    db,
    [{ runId, dagId: dag.dagId, dagHash: dag.hash, conf }],
    db.channel('events'),
  );
  if (created.length === 0) throw new Error(`run id ${runId} was taken`);
  return runId;
}

/** Polls until fn returns a value other than undefined/false; throws with `what` after timeoutMs. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Waits until the run is in a terminal state; the error names the task states when it is not. */
export async function waitForRun(db: Db, runId: string, timeoutMs = 15_000): Promise<RunRow> {
  try {
    return await waitFor(
      async () => {
        const r = await getRun(db, runId);
        return r && TERMINAL_RUN_STATES.includes(r.state) ? r : undefined;
      },
      `run ${runId} to finish`,
      timeoutMs,
    );
  } catch (err) {
    const tis = await listTaskInstances(db, runId);
    const states = tis.map((t) => `${t.task_id}=${t.state}(try ${t.try_number})`).join(', ');
    throw new Error(`${(err as Error).message}; tasks: ${states || 'none'}`, { cause: err });
  }
}

/** Drops a schema made by a test (for Db instances not made by freshDb). */
export async function dropSchema(schema: string) {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await c.end();
  }
}

export interface EngineHarness {
  db: Awaited<ReturnType<typeof freshDb>>;
  broker: PgQueueBroker | RabbitBroker;
  /** The workers' DAG folder (node tasks and plugins load from it). */
  folder: string;
  scheduler: Scheduler;
  worker: Worker;
  /** Stops worker, scheduler and broker (in that order), deletes queues, drops the schema and the folder. */
  stop(): Promise<void>;
}

/**
 * A scheduler and a worker in this process on a schema of their own: the harness most integration tests
 * share. `setup` runs before they start (write DAG files, store DAGs); options override the defaults.
 */
export async function startEngine(
  o: {
    broker?: 'postgres' | 'rabbitmq';
    scheduler?: Partial<SchedulerOptions>;
    worker?: Partial<WorkerOptions>;
    setup?: (db: EngineHarness['db'], folder: string) => Promise<void>;
  } = {},
): Promise<EngineHarness> {
  const db = await freshDb();
  const folder = await tempDir('airtasks-engine-');
  const broker =
    o.broker === 'rabbitmq'
      ? await RabbitBroker.connect({ url: BROKER_URL, prefix: `${uniqueName('test')}.` })
      : new PgQueueBroker(db, { pollMs: 100 });
  await o.setup?.(db, folder);
  const scheduler = new Scheduler({ db, broker, dagsFolder: null, sweepIntervalMs: 500, ...o.scheduler });
  const queues = o.worker?.queues ?? ['worker'];
  const worker = new Worker({
    db,
    broker,
    queues,
    concurrency: 4,
    dagsFolder: folder,
    heartbeatMs: 300,
    ...o.worker,
  });
  await scheduler.start();
  await worker.start();
  return {
    db,
    broker,
    folder,
    scheduler,
    worker,
    async stop() {
      await worker.stop();
      await scheduler.stop();
      if (broker instanceof RabbitBroker) await broker.deleteQueues(queues);
      await broker.close();
      await db.drop();
      await removeDir(folder);
    },
  };
}
