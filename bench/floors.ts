/**
 * The floors of this machine, measured in the same invocation: what one durable step costs at the least.
 * A Postgres INSERT + COMMIT round trip, and a RabbitMQ persistent publish (with confirm) to consumer delivery.
 */
import { execFile } from 'node:child_process';
import amqp from 'amqplib';
import pg from 'pg';
import { BROKER_URL, DATABASE_URL, ROOT, uniqueName } from './engine.js';
import { quantile } from './stats.js';

export interface Floors {
  pgCommitMs: number;
  rabbitRoundTripMs: number;
  /** Peak RSS of a bare Node process, the start of every engine process of the benchmarks. */
  nodeRssMiB: number;
}

export async function pgCommitFloor(samples: number): Promise<number> {
  const c = new pg.Client({ connectionString: DATABASE_URL });
  await c.connect();
  const table = uniqueName('bench_floor');
  try {
    await c.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, v text)`);
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      await c.query('BEGIN');
      await c.query(`INSERT INTO ${table} (v) VALUES ($1)`, ['x']);
      await c.query('COMMIT');
      times.push(performance.now() - t0);
    }
    return quantile(times, 0.5);
  } finally {
    await c.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await c.end();
  }
}

export async function rabbitFloor(samples: number): Promise<number> {
  const conn = await amqp.connect(BROKER_URL);
  const queue = uniqueName('bench_floor');
  try {
    const pub = await conn.createConfirmChannel();
    const sub = await conn.createChannel();
    await pub.assertQueue(queue, { durable: true });
    await sub.prefetch(1);
    let onMessage: () => void = () => undefined;
    await sub.consume(queue, (m) => {
      if (!m) return;
      sub.ack(m);
      onMessage();
    });
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      const delivered = new Promise<void>((r) => (onMessage = r));
      pub.sendToQueue(queue, Buffer.from('x'), { persistent: true });
      await pub.waitForConfirms();
      await delivered;
      times.push(performance.now() - t0);
    }
    await pub.deleteQueue(queue);
    return quantile(times, 0.5);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

export function bareNodeRss(): Promise<number> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['-e', 'setTimeout(() => console.log(process.resourceUsage().maxRSS), 200)'],
      { cwd: ROOT },
      (err, stdout) => (err ? reject(err) : resolve(Number(stdout.trim()) / 1024)),
    ),
  );
}

export async function measureFloors(quick: boolean): Promise<Floors> {
  const n = quick ? 100 : 500;
  return {
    pgCommitMs: await pgCommitFloor(n),
    rabbitRoundTripMs: await rabbitFloor(n),
    nodeRssMiB: await bareNodeRss(),
  };
}
