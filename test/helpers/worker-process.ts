/**
 * A worker in a process of its own, for tests that kill it (`Daemon` with `script`): configured by
 * TEST_WORKER_* variables, on RabbitMQ; prints "test worker started" once it consumes, stops on SIGTERM.
 */
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { Db } from '../../src/engine/store/db.js';
import { Worker } from '../../src/engine/worker/worker.js';

const env = (k: string): string => {
  const v = process.env[k];
  if (v === undefined) throw new Error(`${k} is not set`);
  return v;
};

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
