/** The long-lived processes as plain start/stop handles; the CLI entry point owns the signals. */
import os from 'node:os';
import type { Logger } from '../core/logger.js';
import { Scheduler, type SchedulerOptions } from '../engine/scheduler/scheduler.js';
import { GpuAllocator } from '../engine/worker/gpus.js';
import { Worker, type WorkerOptions } from '../engine/worker/worker.js';
import { ValidationError } from '../core/errors.js';
import { findProject, resolvePausedOnCreation, type ConnectionOptions } from './config.js';
import { openEngine, withEngine, type Engine } from './engine.js';
import { importSecretVariables, SECRETS_DIR_ENV, secretVariableNames } from './secret-variables.js';

export interface Daemon {
  stop(): Promise<void>;
}

export interface SchedulerDaemon extends Daemon {
  /** Resolves once the dags folder was first parsed: the scheduler schedules before, beside the parse. */
  dagsParsed(): Promise<void>;
}

export type SchedulerSettings = Partial<Omit<SchedulerOptions, 'db' | 'broker' | 'logger' | 'dagsFolder'>>;

export async function startScheduler(
  o: ConnectionOptions & { logger: Logger } & SchedulerSettings,
): Promise<SchedulerDaemon> {
  const pausedOnCreation = o.pausedOnCreation ?? resolvePausedOnCreation(findProject(o.cwd));
  const secretNames = secretVariableNames();
  const engine = await openEngine(o, { broker: true, migrate: true, logger: o.logger });
  try {
    await engine.db.tx((c) =>
      importSecretVariables(c, secretNames, { dir: process.env[SECRETS_DIR_ENV], logger: o.logger }),
    );
  } catch (err) {
    await engine.close();
    throw err;
  }
  const scheduler = new Scheduler({
    ...o,
    pausedOnCreation,
    db: engine.db,
    broker: engine.broker!,
    logger: o.logger,
    dagsFolder: engine.conn.dagsFolder,
  });
  const d = await startOrClose(engine, scheduler, () => scheduler.start());
  return { stop: () => d.stop(), dagsParsed: () => scheduler.dagsParsed() };
}

export type WorkerSettings = Partial<
  Omit<WorkerOptions, 'db' | 'broker' | 'logger' | 'dagsFolder' | 'queues' | 'concurrency' | 'gpus'>
> & {
  /** GPUs to hand to tasks: '0,1', 'all' or 'none'; undefined: detect with nvidia-smi. */
  gpus?: string;
};

export async function startWorker(
  o: ConnectionOptions & { logger: Logger; queues: string[]; concurrency: number } & WorkerSettings,
): Promise<Daemon> {
  if (o.queues.length === 0)
    throw new ValidationError('queues', 'missing', (name) => `${name} needs at least one queue name`);
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1)
    throw new ValidationError('concurrency', 'out-of-range', (name) => `${name} must be an integer >= 1`, {
      value: o.concurrency,
    });
  const gpus = await GpuAllocator.fromSpec(o.gpus);
  const engine = await openEngine(o, {
    broker: true,
    migrate: true,
    logger: o.logger,
    maxConnections: o.concurrency + 4,
  });
  const worker = new Worker({
    ...o,
    gpus,
    db: engine.db,
    broker: engine.broker!,
    logger: o.logger,
    dagsFolder: engine.conn.dagsFolder,
  });
  return startOrClose(engine, worker, () => worker.start());
}

async function startOrClose(engine: Engine, d: Daemon, start: () => Promise<void>): Promise<Daemon> {
  try {
    await start();
  } catch (err) {
    await d.stop().catch(() => undefined);
    await engine.close();
    throw err;
  }
  return {
    async stop() {
      await d.stop();
      await engine.close();
    },
  };
}

export async function migrateDb(o: ConnectionOptions) {
  return withEngine(o, async (engine) => engine.migration!, { migrate: true });
}

export const defaultConcurrency = () => Math.max(2, os.availableParallelism());
