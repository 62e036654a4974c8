/**
 * A worker in a process of its own, for tests that kill it (`Daemon` with `script`): configured by
 * TEST_WORKER_* variables, on RabbitMQ; prints "test worker started" once it consumes, stops on SIGTERM.
 * Optional: TEST_WORKER_MAIN_STALL_KILL_MS (WorkerOptions.mainStallKillMs), TEST_WORKER_LOG_LEVEL (logs on stderr),
 * TEST_WORKER_RUN_AS (the user tasks run as, as `worker --run-as`).
 */
import { createLogger } from '../../src/core/logger.js';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { resolveTaskUser, setTaskUser } from '../../src/engine/operators/task-user.js';
import { Db } from '../../src/engine/store/db.js';
import { Worker } from '../../src/engine/worker/worker.js';

const env = (k: string): string => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};

const optional = (k: string): number | undefined =>
  process.env[k] === undefined ? undefined : Number(process.env[k]);

if (process.env.TEST_WORKER_RUN_AS) setTaskUser(resolveTaskUser(process.env.TEST_WORKER_RUN_AS));

const db = new Db({ url: env('TEST_WORKER_DATABASE_URL'), schema: env('TEST_WORKER_SCHEMA') });
const broker = await RabbitBroker.connect({
  url: env('TEST_WORKER_BROKER_URL'),
  prefix: env('TEST_WORKER_PREFIX'),
});
const worker = new Worker({
  db,
  broker,
  queues: [env('TEST_WORKER_QUEUE')],
  concurrency: 4,
  dagsFolder: env('TEST_WORKER_DAGS'),
  heartbeatMs: 300,
  mainStallKillMs: optional('TEST_WORKER_MAIN_STALL_KILL_MS'),
  logger: process.env.TEST_WORKER_LOG_LEVEL
    ? createLogger({ level: process.env.TEST_WORKER_LOG_LEVEL, json: true })
    : undefined,
});
await worker.start();
console.log('test worker started');
process.once('SIGTERM', () => {
  void (async () => {
    await worker.stop();
    await broker.close();
    await db.close();
    process.exit(0);
  })();
});
