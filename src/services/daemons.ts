/** The long-lived processes as plain start/stop handles; the CLI entry point owns the signals. */
import os from 'node:os';
import type { Logger } from '../core/logger.js';
import { Scheduler, type SchedulerOptions } from '../engine/scheduler/scheduler.js';
import { GpuAllocator } from '../engine/worker/gpus.js';
import { resolveTaskUser, setTaskUser } from '../engine/operators/task-user.js';
import { Worker, type WorkerOptions } from '../engine/worker/worker.js';
import { backoffMs, sleep } from '../core/backoff.js';
import { toMs, type Duration } from '../core/duration.js';
import { AirtasksError, ExitCode, UnavailableError, ValidationError } from '../core/errors.js';
import { findProject, resolvePausedOnCreation, type ConnectionOptions } from './config.js';
import { openEngine, withEngine, type Engine, type OpenOptions } from './engine.js';
import { importSecretVariables, SECRETS_DIR_ENV, secretVariableNames } from './secret-variables.js';
import { bindSchedulerMetrics, bindWorkerMetrics, type DaemonMetrics } from './metrics/daemon.js';

export interface Daemon {
  stop(): Promise<void>;
}

export interface SchedulerDaemon extends Daemon {
  /** Resolves once the dags folder was first parsed: the scheduler schedules before, beside the parse. */
  dagsParsed(): Promise<void>;
}

export type SchedulerSettings = Partial<Omit<SchedulerOptions, 'db' | 'broker' | 'logger' | 'dagsFolder'>>;

export async function startScheduler(
  o: ConnectionOptions & { logger: Logger; metrics?: DaemonMetrics } & SchedulerSettings,
): Promise<SchedulerDaemon> {
  const pausedOnCreation = o.pausedOnCreation ?? resolvePausedOnCreation(findProject(o.cwd));
  const secretNames = secretVariableNames();
  // Migrations (serialised by a lock) are done before the scheduler schedules anything.
  const engine = await openEngineWaiting(o, { broker: true, migrate: true, logger: o.logger });
  try {
    await engine.db.tx((c) =>
      importSecretVariables(c, secretNames, { dir: process.env[SECRETS_DIR_ENV], logger: o.logger }),
    );
  } catch (err) {
    await engine.close();
    throw err;
  }
  const bound = bindSchedulerMetrics(o, engine);
  const scheduler = new Scheduler({
    ...o,
    ...bound.options,
    pausedOnCreation,
    db: engine.db,
    broker: engine.broker!,
    dagsFolder: engine.conn.dagsFolder,
  });
  const d = await startOrClose(engine, scheduler, () => scheduler.start(), bound.unbind);
  return { stop: () => d.stop(), dagsParsed: () => scheduler.dagsParsed() };
}

export type WorkerSettings = Partial<
  Omit<WorkerOptions, 'db' | 'broker' | 'logger' | 'dagsFolder' | 'queues' | 'concurrency' | 'gpus'>
> & {
  /** GPUs to hand to tasks: '0,1', 'all' or 'none'; undefined: detect with nvidia-smi. */
  gpus?: string;
  /** The unprivileged user tasks run as (the worker must be root); undefined: the worker's own user. */
  runAs?: string;
};

export async function startWorker(
  o: ConnectionOptions & {
    logger: Logger;
    queues: string[];
    concurrency: number;
    metrics?: DaemonMetrics;
  } & WorkerSettings,
): Promise<Daemon> {
  if (o.queues.length === 0)
    throw new ValidationError('queues', 'missing', (name) => `${name} needs at least one queue name`);
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1)
    throw new ValidationError('concurrency', 'out-of-range', (name) => `${name} must be an integer >= 1`, {
      value: o.concurrency,
    });
  // Before anything connects: a worker that cannot switch users must not take tasks.
  setTaskUser(o.runAs ? resolveTaskUser(o.runAs) : null);
  const gpus = await GpuAllocator.fromSpec(o.gpus);
  const engine = await openEngineWaiting(o, {
    broker: true,
    migrate: true,
    logger: o.logger,
    maxConnections: o.concurrency + 4,
  });
  const bound = bindWorkerMetrics(o);
  const worker = new Worker({
    ...o,
    ...bound.options,
    gpus,
    db: engine.db,
    broker: engine.broker!,
    dagsFolder: engine.conn.dagsFolder,
  });
  bound.watch(worker, o.concurrency, gpus);
  return startOrClose(engine, worker, () => worker.start(), bound.unbind);
}

export const CONNECT_WAIT_ENV = 'AIRTASKS_CONNECT_WAIT';

/** AIRTASKS_CONNECT_WAIT (`120s`, `2m`; a plain number is seconds) in ms; unset or 0: no wait. */
export function connectWaitMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = env[CONNECT_WAIT_ENV]?.trim();
  if (!v) return 0;
  try {
    return toMs((/^\d+$/.test(v) ? `${v}s` : v) as Duration, CONNECT_WAIT_ENV);
  } catch (err) {
    throw new AirtasksError((err as Error).message, ExitCode.USAGE);
  }
}

/**
 * Opens the engine; while the database or the broker cannot be reached (exit code 4) and
 * AIRTASKS_CONNECT_WAIT has not passed, tries again (a stack's services start in no set order). The
 * CLI's default is no wait: a command fails at once, saying what it could not reach.
 */
export async function openEngineWaiting(
  o: ConnectionOptions & { logger: Logger },
  open: OpenOptions,
): Promise<Engine> {
  const end = Date.now() + connectWaitMs();
  for (let attempt = 0; ; attempt++) {
    try {
      return await openEngine(o, open);
    } catch (err) {
      const delay = backoffMs(attempt, 500, 5000);
      const waiting =
        err instanceof UnavailableError && (err.dependency === 'database' || err.dependency === 'broker');
      if (!waiting || Date.now() + delay > end) throw err;
      o.logger.warn(
        { dependency: err.dependency, retryInMs: delay, error: err.message },
        `waiting for the ${err.dependency} (${CONNECT_WAIT_ENV})`,
      );
      await sleep(delay);
    }
  }
}

async function startOrClose(
  engine: Engine,
  d: Daemon,
  start: () => Promise<void>,
  /** Undoes what was set up beside it (metrics bindings), after it stopped. */
  after: () => void = () => undefined,
): Promise<Daemon> {
  try {
    await start();
  } catch (err) {
    await d.stop().catch(() => undefined);
    after();
    await engine.close();
    throw err;
  }
  return {
    async stop() {
      await d.stop();
      after();
      await engine.close();
    },
  };
}

export async function migrateDb(o: ConnectionOptions) {
  return withEngine(o, async (engine) => engine.migration!, { migrate: true });
}

export const defaultConcurrency = () => Math.max(2, os.availableParallelism());
