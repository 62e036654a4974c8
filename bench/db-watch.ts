/**
 * Watches the Postgres backends of a benchmark's processes (by application_name prefix) while it runs:
 * samples pg_stat_activity to see what they wait on (locks, WAL, the client, or nothing: running), and
 * counts the database's transactions. Sampling shows shares of time, not exact totals.
 */
import pg from 'pg';

export interface WaitShares {
  /** Samples of backends that were working (active) or inside a transaction (idle in transaction). */
  busySamples: number;
  /** Shares of busySamples, 0..1. */
  lock: number;
  /** Flushing or writing WAL (commits waiting for their WAL record on disk), including waits for that lock. */
  wal: number;
  /** Other I/O and internal locks (LWLock) besides WAL. */
  otherWaits: number;
  /** Inside a transaction, waiting for the client's next statement. */
  client: number;
  /** Active and waiting on nothing: using CPU. */
  running: number;
  /** The most connections one process (one application_name before its '-listen'/'-heartbeat') held at once. */
  maxConnectionsPerProcess: number;
  /** The most connections all the watched processes held at once. */
  maxConnections: number;
  /** Transactions committed or rolled back in the database meanwhile (every session of it). */
  transactions: number;
  /**
   * WAL flushes (fsyncs) of the server meanwhile (pg_stat_wal, every database): one flush makes every
   * commit waiting for it durable at once (group commit), so commits per flush grow with concurrency.
   */
  walFlushes: number;
  /** WAL written meanwhile, in bytes (every database). */
  walBytes: number;
}

interface Row {
  application_name: string;
  state: string | null;
  wait_event_type: string | null;
  wait_event: string | null;
}

const WAL_EVENTS = new Set(['WALSync', 'WALWrite', 'WALInitSync', 'WALInitWrite', 'WALRead']);

export class DbWatch {
  private readonly client: pg.Client;
  private timer: NodeJS.Timeout | null = null;
  private sampling: Promise<void> = Promise.resolve();
  private startXacts = 0;
  private startFlushes = 0;
  private startWalBytes = 0;
  private counts = { busy: 0, lock: 0, wal: 0, other: 0, client: 0, running: 0 };
  private maxPerProcess = 0;
  private maxAll = 0;

  constructor(
    url: string,
    private readonly appPrefix: string,
    private readonly intervalMs = 20,
  ) {
    this.client = new pg.Client({ connectionString: url, application_name: 'bench-db-watch' });
  }

  async start(): Promise<void> {
    await this.client.connect();
    [this.startXacts, this.startFlushes, this.startWalBytes] = await this.counters();
    const tick = () => {
      this.sampling = this.sample().then(() => {
        if (this.timer) this.timer = setTimeout(tick, this.intervalMs);
      });
    };
    this.timer = setTimeout(tick, this.intervalMs);
  }

  private async counters(): Promise<[number, number, number]> {
    // The counters are cached per transaction; a fresh snapshot each time.
    await this.client.query('SELECT pg_stat_clear_snapshot()');
    const r = await this.client.query<{ n: string; f: string; b: string }>(
      `SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()) AS n,
              wal_sync AS f, wal_bytes AS b FROM pg_stat_wal`,
    );
    return [Number(r.rows[0]!.n), Number(r.rows[0]!.f), Number(r.rows[0]!.b)];
  }

  private async sample(): Promise<void> {
    const r = await this.client.query<Row>(
      `SELECT application_name, state, wait_event_type, wait_event FROM pg_stat_activity
       WHERE starts_with(application_name, $1) AND pid <> pg_backend_pid()`,
      [this.appPrefix],
    );
    const perProcess = new Map<string, number>();
    for (const x of r.rows) {
      const proc = x.application_name.replace(/-(listen|heartbeat)$/, '');
      perProcess.set(proc, (perProcess.get(proc) ?? 0) + 1);
      const c = this.counts;
      if (x.state === 'idle in transaction') {
        c.busy++;
        c.client++;
      } else if (x.state === 'active') {
        c.busy++;
        if (x.wait_event_type === 'Lock') c.lock++;
        // IO:WALSync/WALWrite, and LWLock:WALWrite (waiting for another backend's flush: group commit).
        else if (WAL_EVENTS.has(x.wait_event ?? '')) c.wal++;
        else if (x.wait_event_type === 'Client') c.client++;
        else if (x.wait_event_type === null) c.running++;
        else c.other++;
      }
    }
    this.maxAll = Math.max(this.maxAll, r.rows.length);
    this.maxPerProcess = Math.max(this.maxPerProcess, ...perProcess.values(), 0);
  }

  async stop(): Promise<WaitShares> {
    const t = this.timer;
    this.timer = null;
    if (t) clearTimeout(t);
    await this.sampling;
    const [xacts, flushes, walBytes] = await this.counters();
    await this.client.end();
    const c = this.counts;
    const share = (n: number) => (c.busy === 0 ? 0 : n / c.busy);
    return {
      busySamples: c.busy,
      lock: share(c.lock),
      wal: share(c.wal),
      otherWaits: share(c.other),
      client: share(c.client),
      running: share(c.running),
      maxConnectionsPerProcess: this.maxPerProcess,
      maxConnections: this.maxAll,
      transactions: xacts - this.startXacts,
      walFlushes: flushes - this.startFlushes,
      walBytes: walBytes - this.startWalBytes,
    };
  }
}
