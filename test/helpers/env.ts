/**
 * Test isolation on the machine's real services: each test gets its own Postgres schema and its own
 * RabbitMQ name prefix. Outside CI a missing service skips the tests that need it; in CI (CI=true)
 * it fails them, so nothing is silently skipped there.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import pg from 'pg';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { Db } from '../../src/engine/store/db.js';
import { migrate } from '../../src/engine/store/migrate.js';

export const DATABASE_URL =
  process.env.AIRTASKS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const BROKER_URL = process.env.AIRTASKS_TEST_BROKER_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export function uniqueName(prefix: string): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

function reachable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 1000 }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.on('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** Call in a before() hook: skips the suite when the service is down, except in CI where that is a failure. */
export async function requireService(ctx: Mocha.Context, name: 'postgres' | 'rabbitmq') {
  const url = new URL(name === 'postgres' ? DATABASE_URL : BROKER_URL);
  const ok = await reachable(url.hostname, Number(url.port || (name === 'postgres' ? 5432 : 5672)));
  if (ok) return;
  if (process.env.CI === 'true')
    throw new Error(`${name} is not reachable at ${url.host}; CI must start it (.ci/run)`);
  ctx.skip();
}

/** A migrated schema of its own; drop() removes it. */
export async function freshDb(): Promise<Db & { drop(): Promise<void> }> {
  const schema = uniqueName('t');
  const db = new Db({ url: DATABASE_URL, schema });
  await migrate(db);
  return Object.assign(db, {
    async drop() {
      await db.close();
      const c = new pg.Client({ connectionString: DATABASE_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await c.end();
    },
  });
}

/** Deletes a test's RabbitMQ queues (and its exchange), named with its own prefix, through a connection of its own. */
export async function deleteTestQueues(prefix: string, queues: string[]): Promise<void> {
  const rabbit = await RabbitBroker.connect({ url: BROKER_URL, prefix });
  try {
    await rabbit.deleteQueues(queues);
  } finally {
    await rabbit.close();
  }
}
