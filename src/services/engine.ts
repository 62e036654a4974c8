/**
 * Opens the store (and the broker when needed) from connection settings: for a service call, with
 * errors a user can act on (openEngine), or as the bare pool and broker for a long-lived reader.
 */
import { createBroker } from '../engine/broker/index.js';
import type { Broker } from '../engine/broker/broker.js';
import { AirtasksError, UnavailableError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { Db } from '../engine/store/db.js';
import { migrate, type MigrationResult } from '../engine/store/migrate.js';
import { resolveConnection, type Connection, type ConnectionOptions } from './config.js';

export interface Engine {
  conn: Connection;
  db: Db;
  broker: Broker | null;
  /** Set when opened with migrate. */
  migration?: MigrationResult;
  close(): Promise<void>;
}

/** The store's connection pool for these settings; it connects on first use. */
export function connectDb(conn: Connection, o: { logger?: Logger; maxConnections?: number } = {}): Db {
  return new Db({
    url: conn.databaseUrl,
    schema: conn.schema,
    logger: o.logger,
    maxConnections: o.maxConnections,
    applicationName: conn.connectionName,
  });
}

/** The broker of these settings: RabbitMQ when they name one, else the Postgres queue of `db`. */
export function connectBroker(db: Db, conn: Connection, logger?: Logger): Promise<Broker> {
  return createBroker(db, {
    url: conn.brokerUrl,
    prefix: conn.queuePrefix,
    logger,
    connectionName: conn.connectionName,
  });
}

export interface OpenOptions {
  /** Open the broker too (default: the store only). */
  broker?: boolean;
  /** Bring the schema up to date (default: check that it exists). */
  migrate?: boolean;
  logger?: Logger;
  maxConnections?: number;
}

export async function openEngine(opts: ConnectionOptions, o: OpenOptions = {}): Promise<Engine> {
  const conn = resolveConnection(opts);
  const db = connectDb(conn, o);
  let broker: Broker | null = null;
  let migration: MigrationResult | undefined;
  try {
    if (o.migrate) migration = await migrate(db);
    else await checkSchema(db);
    if (o.broker) broker = await connectBroker(db, conn, o.logger);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw asUserError(err, conn);
  }
  return {
    conn,
    db,
    broker,
    migration,
    async close() {
      await broker?.close().catch(() => undefined);
      await db.close().catch(() => undefined);
    },
  };
}

/** Runs `f` with an engine opened for it, and closes the engine however `f` ends. */
export async function withEngine<T>(
  opts: ConnectionOptions,
  f: (engine: Engine) => Promise<T>,
  o: OpenOptions = {},
): Promise<T> {
  const engine = await openEngine(opts, o);
  try {
    return await f(engine);
  } finally {
    await engine.close();
  }
}

async function checkSchema(db: Db) {
  const r = await db.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [
    `"${db.schema}".dag_runs`,
  ]);
  if (!r.rows[0]?.ok) {
    throw new UnavailableError(
      'database',
      `The database has no airtasks schema "${db.schema}" yet: run \`airtasks db migrate\` (the scheduler does it when it starts).`,
    );
  }
}

/** Connection failures become messages that say which service and what to check. */
export function asUserError(err: unknown, conn: Pick<Connection, 'databaseUrl' | 'brokerUrl'>): Error {
  if (err instanceof AirtasksError) return err;
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? '';
  // 57P03: the server is starting (or stopping); EAI_AGAIN: a name lookup to try again.
  const unreachable = ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'EHOSTUNREACH', 'EAI_AGAIN', '57P03'];
  if ([...unreachable, '28P01', '3D000', '28000'].includes(code)) {
    const broker = /amqp/i.test(e.message) || e.message?.includes('5672');
    const which = broker ? `broker ${redact(conn.brokerUrl)}` : `database ${redact(conn.databaseUrl)}`;
    return new UnavailableError(broker ? 'broker' : 'database', `Cannot reach the ${which}: ${e.message}`, {
      cause: err,
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** A URL without its password, for messages and logs. */
export function redact(url: string | undefined): string {
  if (!url) return '(none)';
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}
