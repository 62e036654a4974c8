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
import { hideFromTasks } from '../engine/operators/task-env.js';
import { resolveConnection, type Connection, type ConnectionOptions } from './config.js';
import { checkServiceUrl, connectionFailure, redact, type Service } from './connection-errors.js';

// Kept here too: callers took it from this module before it moved beside the other connection wording.
export { redact } from './connection-errors.js';

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
  checkServiceUrl('database', conn.databaseUrl);
  // However it was given (flag, file, password file), no task of this process may find it in its environment.
  hideFromTasks(conn.databaseUrl);
  return new Db({
    url: conn.databaseUrl,
    schema: conn.schema,
    logger: o.logger,
    maxConnections: o.maxConnections,
    applicationName: conn.connectionName,
    connectTimeoutMs: conn.connectTimeoutMs,
  });
}

/**
 * The broker of these settings: RabbitMQ when they name one, else the Postgres queue of `db`. A failure
 * to connect is an UnavailableError that says what to check.
 */
export async function connectBroker(db: Db, conn: Connection, logger?: Logger): Promise<Broker> {
  checkServiceUrl('broker', conn.brokerUrl);
  hideFromTasks(conn.brokerUrl);
  try {
    return await createBroker(db, {
      url: conn.brokerUrl,
      prefix: conn.queuePrefix,
      logger,
      connectionName: conn.connectionName,
      connectTimeoutMs: conn.connectTimeoutMs,
    });
  } catch (err) {
    throw asUserError(err, 'broker', conn, logger);
  }
}

/** A broker a short-lived process publishes through once, connected beside its other work. */
export interface OneShotBroker {
  /** The broker readied for `queues`, or null when it could not be reached in time (never rejects). */
  ready(queues: string[]): Promise<Broker | null>;
  /** Closes what it opened. */
  close(): Promise<void>;
}

/**
 * The engine's broker, the Postgres queue, or RabbitMQ connected from now on and given at most `waitMs`
 * (a first message is worth a scheduler's hop, not a wait on a broker that does not answer): the caller
 * leaves the sending to the schedulers when it gets null.
 */
export function oneShotBroker(engine: Engine, waitMs: number, logger?: Logger): OneShotBroker {
  const { conn, db, broker: held } = engine;
  if (held) return { ready: async () => held, close: async () => undefined };
  const connecting = createBroker(db, {
    url: conn.brokerUrl,
    prefix: conn.queuePrefix,
    logger,
    connectionName: conn.connectionName,
    connectTimeoutMs: Math.min(conn.connectTimeoutMs ?? waitMs, waitMs),
  }).catch((err: Error) => {
    logger?.debug({ err: err.message }, 'broker not reached: the schedulers send the first messages');
    return null;
  });
  return {
    async ready(queues) {
      const broker = await connecting;
      try {
        await broker?.prepare(queues);
        return broker;
      } catch (err) {
        logger?.debug(
          { err: (err as Error).message },
          'broker not ready: the schedulers send the first messages',
        );
        return null;
      }
    },
    async close() {
      await (await connecting)?.close();
    },
  };
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
  if (o.broker) checkServiceUrl('broker', conn.brokerUrl);
  const db = connectDb(conn, o);
  let broker: Broker | null = null;
  let migration: MigrationResult | undefined;
  try {
    try {
      if (o.migrate) migration = await migrate(db);
      else await checkSchema(db);
    } catch (err) {
      throw asUserError(err, 'database', conn, o.logger);
    }
    if (o.broker) broker = await connectBroker(db, conn, o.logger);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
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
  // A shared engine was opened once by its owner (migrated or checked then); its broker is there if asked.
  if (opts.engine && (!o.broker || opts.engine.broker)) return f(opts.engine);
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

/**
 * A failure to connect to `service` as a message that says which service, where, and what to check
 * (the cause, with its stack, goes to the debug log); any other error stays as it is.
 */
export function asUserError(
  err: unknown,
  service: Service,
  conn: Pick<Connection, 'databaseUrl' | 'brokerUrl' | 'connectTimeoutMs'>,
  logger?: Logger,
): Error {
  if (err instanceof AirtasksError) return err;
  const url = service === 'database' ? conn.databaseUrl : conn.brokerUrl;
  const failure = connectionFailure(err, service, url, conn.connectTimeoutMs);
  if (!failure) return err instanceof Error ? err : new Error(String(err));
  logger?.debug({ err, service, url: redact(url) }, `connecting to the ${service} failed`);
  return failure;
}
