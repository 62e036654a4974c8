/** Postgres connections: a pool bound to one schema, transactions, and LISTEN with reconnect. */
import pg from './pg.js';
import { backoffMs } from '../../core/backoff.js';
import { ValidationError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';

/**
 * A statement Postgres keeps prepared on each connection (by name): it is parsed and planned once per
 * connection instead of at every call. For the statements a worker sends per task, planning cost as much
 * Postgres CPU as running them (0.7-0.8 ms a call for the batched claim and result).
 */
export interface Prepared {
  name: string;
  text: string;
}

/** Names a statement to keep prepared; the name must be unique among the store's statements. */
export function prepared(name: string, text: string): Prepared {
  return { name: `airtasks_${name}`, text };
}

/** Anything that runs a query: the Db, its pool, or a client inside a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string | Prepared,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
}

export interface DbOptions {
  url: string;
  /** Schema holding airtasks' tables; lets tests (and several installations) share one database. */
  schema?: string;
  maxConnections?: number;
  logger?: Logger;
  applicationName?: string;
  /** How long opening a connection (or waiting for a free one) may take; default 10 s. */
  connectTimeoutMs?: number;
}

const SCHEMA_PATTERN = /^[a-z_][a-z0-9_]{0,40}$/;

// Timestamps as JS Dates, bigints (bigserial ids, counts) as numbers: airtasks' ids stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export class Db {
  readonly pool: pg.Pool;
  readonly schema: string;
  private closed = false;

  constructor(readonly options: DbOptions) {
    this.schema = options.schema ?? 'airtasks';
    if (!SCHEMA_PATTERN.test(this.schema)) {
      throw new ValidationError(
        'schema',
        'malformed',
        (name) =>
          `invalid ${name} "${this.schema}": use lower-case letters, digits and '_' (at most 41 characters, not starting with a digit)`,
        { value: this.schema },
      );
    }
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      // Prepared statements (see Prepared) are planned once: their plans do not depend on the values bound.
      // Left to itself, Postgres re-plans the batched claim at most calls, as the sizes of its arrays change.
      options: `-c search_path=${this.schema} -c plan_cache_mode=force_generic_plan`,
      application_name: options.applicationName ?? 'airtasks',
      // Bounds the TCP connect and the handshake: a server that accepts and never answers fails here.
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    });
    // An idle client that loses its server emits here; without a listener it would crash the process.
    this.pool.on('error', (err) =>
      options.logger?.warn({ err: err.message }, 'idle database connection lost'),
    );
  }

  /** Channel names are per database, so they carry the schema. */
  channel(name: 'events' | 'queue' | 'claims' | 'variables'): string {
    return `airtasks_${this.schema}_${name}`;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | Prepared, values?: unknown[]) {
    return this.pool.query<R>(text, values);
  }

  async tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    // The pool listens for errors only on idle clients. A connection lost while checked out, between
    // two statements of this transaction, would otherwise be an unhandled 'error' event that crashes
    // the process; with this listener the next statement fails instead, and the transaction with it.
    const onError = (err: Error) =>
      this.options.logger?.warn({ err: err.message }, 'database connection lost in a transaction');
    c.on('error', onError);
    let out: T;
    try {
      await c.query('BEGIN');
      out = await fn(c);
      await c.query('COMMIT');
    } catch (e) {
      // A connection that cannot even roll back is broken (terminated, network gone): destroy it rather
      // than hand it back to the pool, where the next caller would fail on it too.
      const broken = await c.query('ROLLBACK').then(
        () => false,
        () => true,
      );
      c.off('error', onError);
      c.release(broken);
      throw e;
    }
    c.off('error', onError);
    c.release();
    return out;
  }

  listen(channels: string[], onNotify: (channel: string, payload: string) => void, onReconnect?: () => void) {
    return new Listener(this.options, channels, onNotify, onReconnect);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}

/** A dedicated connection that LISTENs, and comes back by itself after the server or network drops it. */
export class Listener {
  private client: pg.Client | null = null;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | null = null;
  readonly ready: Promise<void>;

  constructor(
    private readonly options: DbOptions,
    private readonly channels: string[],
    private readonly onNotify: (channel: string, payload: string) => void,
    private readonly onReconnect?: () => void,
  ) {
    this.ready = this.connect(0);
  }

  private async connect(attempt: number): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({
      connectionString: this.options.url,
      application_name: `${this.options.applicationName ?? 'airtasks'}-listen`,
      // Without it a reconnect to a server that accepts and never answers would wait for ever.
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 10_000,
    });
    client.on('notification', (n) => this.onNotify(n.channel, n.payload ?? ''));
    client.on('error', () => this.reconnect(client, 0));
    client.on('end', () => this.reconnect(client, 0));
    try {
      await client.connect();
      for (const ch of this.channels) await client.query(`LISTEN "${ch}"`);
      this.client = client;
      if (attempt > 0) this.onReconnect?.();
    } catch (err) {
      this.options.logger?.warn(
        { err: (err as Error).message, attempt },
        'LISTEN connection failed; retrying',
      );
      client.end().catch(() => undefined);
      if (attempt === 0 && !this.onReconnect) throw err;
      this.scheduleRetry(attempt + 1);
    }
  }

  private reconnect(client: pg.Client, attempt: number) {
    if (this.stopped || this.client !== client) return;
    this.client = null;
    this.options.logger?.warn('LISTEN connection lost; reconnecting');
    client.end().catch(() => undefined);
    this.scheduleRetry(attempt + 1);
  }

  private scheduleRetry(attempt: number) {
    if (this.stopped || this.retryTimer) return;
    const delay = backoffMs(attempt, 100);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.connect(Math.max(attempt, 1));
    }, delay);
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }
}

const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);

/**
 * True when the error says the database could not be reached or the connection died (the server
 * terminated it, restarted, or the network dropped), as opposed to an error in the statement itself.
 * Such errors are worth retrying; they are never a task's own failure.
 */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  // 08xxx connection exceptions, 57P01-57P03 admin/crash shutdown, cannot connect now.
  if (code.startsWith('08') || /^57P0[1-3]$/.test(code) || CONNECTION_ERROR_CODES.has(code)) return true;
  const msg = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|not queryable|timeout exceeded when trying to connect|terminating connection/i.test(
    msg,
  );
}
