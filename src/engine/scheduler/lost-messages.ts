/**
 * Safety-net sweeps for task messages that never reached a worker: outbox rows an interrupted publisher
 * left behind, and queued tries whose message the broker lost.
 */
import type { Logger } from '../../core/logger.js';
import type { Broker } from '../broker/broker.js';
import type { Db } from '../store/db.js';
import { type OutboxRow, anyStaleOutbox, deleteOutbox, lockStaleOutbox } from '../store/outbox.js';
import { findStaleQueued, requeueStale } from '../store/recovery.js';

export interface LostMessagesDeps {
  db: Db;
  broker: Broker;
  publish: (rows: OutboxRow[]) => Promise<void>;
  log: Logger;
  /** Outbox rows older than this are taken to be left by a dead publisher. */
  outboxStaleMs: number;
  /** A queued try unclaimed for this long may have lost its message (see requeueLost). */
  requeueAfterMs: number;
  stopping: AbortSignal;
}

export class LostMessages {
  constructor(private readonly d: LostMessagesDeps) {}

  /** Publishes outbox rows older than outboxStaleMs, and deletes them. */
  async republishStaleOutbox(): Promise<void> {
    const { db, log, outboxStaleMs } = this.d;
    if (this.d.stopping.aborted) return;
    try {
      // Almost always empty: one statement to see that, rather than a transaction of three.
      if (!(await anyStaleOutbox(db, outboxStaleMs))) return;
      await db.tx(async (c) => {
        const rows = await lockStaleOutbox(c, outboxStaleMs, 1000);
        if (rows.length === 0) return;
        await this.d.broker.publish(
          rows.map((r) => ({ queue: r.queue, priority: r.priority, body: r.payload })),
          c,
        );
        await deleteOutbox(
          c,
          rows.map((r) => r.id),
        );
        log.warn(
          { messages: rows.length },
          'published messages left in the outbox by an interrupted publisher',
        );
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'outbox sweep failed');
    }
  }

  /**
   * Sends a new message for queued tries whose message is gone. The rule, per try: queued and unclaimed
   * for longer than requeueAfterMs since its message last went out, no outbox row for it, and its broker
   * queue holds no ready message. A queue with a backlog (ready > 0) may still hold the message, so
   * nothing is re-sent there until it drains: no flood of duplicates. A worker claims a message when a slot
   * takes it, holds one unclaimed for at most its prefetch hold (1 s) and asks for none beyond its slots
   * while they stay busy, so an empty queue and an old unclaimed try mean the message was lost. A duplicate
   * in a rare race is harmless: the claim takes one and the other is acked and ignored.
   */
  async requeueLost(): Promise<void> {
    const { db, log, requeueAfterMs: after } = this.d;
    if (this.d.stopping.aborted) return;
    try {
      const stale = await findStaleQueued(db, after, 1000);
      if (stale.length === 0) return;
      const depths = await this.d.broker.depths([...new Set(stale.map((s) => s.queue))]);
      const empty = new Set(depths.filter((d) => d.ready === 0).map((d) => d.queue));
      const lost = stale.filter((s) => empty.has(s.queue));
      if (lost.length === 0) return;
      const rows = await db.tx((c) => requeueStale(c, lost, after));
      if (rows.length === 0) return;
      log.warn(
        {
          messages: rows.length,
          tasks: rows.slice(0, 10).map((r) => `${r.payload.runId}/${r.payload.taskId}`),
        },
        'queued tasks lost their messages (empty queue, unclaimed); sent again',
      );
      await this.d.publish(rows);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'lost-message check failed');
    }
  }
}
