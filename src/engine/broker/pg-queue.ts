/**
 * The Postgres broker, used when no broker URL is configured (standalone, small installs): a queue table
 * claimed with FOR UPDATE SKIP LOCKED, woken by LISTEN/NOTIFY. A delivery is a lease that the consumer
 * keeps extending while it holds it; if the consumer dies the lease runs out and the message returns.
 */
import { randomUUID } from 'node:crypto';
import type { Db, Listener, Queryable } from '../store/db.js';
import * as sql from '../store/queue.js';
import type { Logger } from '../../core/logger.js';
import { silentLogger } from '../../core/logger.js';
import {
  parseTaskMessage,
  priorityBucket,
  type Broker,
  type Delivery,
  type OutgoingMessage,
  type QueueDepth,
  type Subscription,
} from './broker.js';

export interface PgQueueOptions {
  leaseMs?: number;
  /** Fallback poll when no notification arrives (a notification can be missed while reconnecting). */
  pollMs?: number;
  logger?: Logger;
}

export class PgQueueBroker implements Broker {
  readonly kind = 'postgres' as const;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly log: Logger;
  private readonly subs = new Set<PgSubscription>();

  constructor(
    private readonly db: Db,
    opts: PgQueueOptions = {},
  ) {
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 1000;
    this.log = opts.logger ?? silentLogger;
  }

  /** Nothing to ready: a publish is an insert. */
  async prepare(): Promise<void> {}

  async publish(messages: OutgoingMessage[], within?: Queryable): Promise<void> {
    await sql.enqueue(
      within ?? this.db,
      messages.map((m) => ({ queue: m.queue, priority: priorityBucket(m.priority), payload: m.body })),
      this.db.channel('queue'),
    );
  }

  async subscribe(
    queues: string[],
    prefetch: number,
    onDelivery: (d: Delivery) => void,
  ): Promise<Subscription> {
    const s = new PgSubscription(this.db, queues, prefetch, onDelivery, this.leaseMs, this.pollMs, this.log);
    this.subs.add(s);
    await s.start();
    return {
      cancel: async () => {
        await s.stopIntake();
      },
      setPrefetch: async (n) => s.setPrefetch(n),
    };
  }

  async depths(queues: string[]): Promise<QueueDepth[]> {
    const rows = new Map((await sql.queueDepths(this.db)).map((r) => [r.queue, r]));
    return queues.map((q) => ({
      queue: q,
      ready: rows.get(q)?.ready ?? 0,
      unacked: rows.get(q)?.unacked ?? 0,
      consumers: null,
    }));
  }

  async close(): Promise<void> {
    for (const s of this.subs) await s.close();
    this.subs.clear();
  }
}

class PgSubscription {
  private readonly owner = randomUUID();
  private readonly held = new Set<number>();
  private listener: Listener | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private extendTimer: NodeJS.Timeout | null = null;
  private fetching = false;
  private again = false;
  private intake = true;
  /**
   * Room left free after a release, for one poll interval: the message goes to another consumer (woken by
   * the release) rather than straight back to this one, which gave it back for want of a free slot.
   */
  private withheld = 0;

  constructor(
    private readonly db: Db,
    private readonly queues: string[],
    private prefetch: number,
    private readonly onDelivery: (d: Delivery) => void,
    private readonly leaseMs: number,
    private readonly pollMs: number,
    private readonly log: Logger,
  ) {}

  async start() {
    this.listener = this.db.listen(
      [this.db.channel('queue')],
      (_ch, queue) => {
        if (this.queues.includes('*') || this.queues.includes(queue)) this.fetch();
      },
      () => this.fetch(),
    );
    await this.listener.ready;
    this.pollTimer = setInterval(() => this.fetch(), this.pollMs);
    this.extendTimer = setInterval(() => void this.extend(), Math.max(100, this.leaseMs / 3));
    this.fetch();
  }

  /** Leases as many messages as there is room for; coalesces calls that arrive while one runs. */
  private fetch() {
    if (!this.intake) return;
    if (this.fetching) {
      this.again = true;
      return;
    }
    const room = this.prefetch - this.held.size - this.withheld;
    if (room <= 0) return;
    this.fetching = true;
    sql
      .lease(this.db, this.queues, room, this.owner, this.leaseMs)
      .then((rows) => {
        for (const row of rows) this.hand(row);
        if (rows.length === room) this.again = true;
      })
      .catch((err: Error) => this.log.warn({ err: err.message }, 'queue fetch failed; will retry'))
      .finally(() => {
        this.fetching = false;
        if (this.again) {
          this.again = false;
          this.fetch();
        }
      });
  }

  private hand(row: sql.QueueRow) {
    const body = parseTaskMessage(row.payload);
    if (!body || !this.intake) {
      if (!body) this.log.error({ id: row.id }, 'malformed message dropped');
      void (body
        ? sql.releaseMessages(this.db, [row.id], this.owner, this.db.channel('queue'))
        : sql.ackMessages(this.db, [row.id], this.owner));
      return;
    }
    this.held.add(row.id);
    let settled = false;
    const settle = (fn: () => Promise<void>, withhold: boolean) => async () => {
      if (settled) return;
      settled = true;
      if (withhold) this.withhold();
      try {
        await fn();
      } finally {
        this.held.delete(row.id);
        this.fetch();
      }
    };
    this.onDelivery({
      queue: row.queue,
      body,
      redelivered: row.deliveries > 1,
      ack: settle(() => sql.ackMessages(this.db, [row.id], this.owner), false),
      release: settle(
        () => sql.releaseMessages(this.db, [row.id], this.owner, this.db.channel('queue')),
        true,
      ),
    });
  }

  setPrefetch(n: number) {
    this.prefetch = n;
    this.fetch();
  }

  private withhold() {
    this.withheld++;
    setTimeout(() => {
      this.withheld--;
      this.fetch();
    }, this.pollMs).unref();
  }

  private async extend() {
    try {
      await sql.extendLeases(this.db, [...this.held], this.owner, this.leaseMs);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'lease extension failed');
    }
  }

  async stopIntake() {
    this.intake = false;
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
    await this.listener?.close();
    this.listener = null;
  }

  async close() {
    await this.stopIntake();
    if (this.extendTimer) clearInterval(this.extendTimer);
    this.extendTimer = null;
  }
}
