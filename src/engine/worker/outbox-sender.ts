/**
 * Sends the messages of tasks a worker's successes queued beside the one each slot runs next, in the
 * background (next-tries.ts). Rows that come while a publish is under way go together in the next one
 * (Batcher): one transaction and one confirm for all of them instead of one each, as in a binary tree's
 * run, where every other success has a sibling to send. Failures are publishOutbox's: the rows are left to
 * the schedulers' stale sweep. Rows still waiting here are not taken: if they wait past the sweep's
 * threshold, the sweep may send them first (with RabbitMQ they then go twice, a duplicate that finds nothing
 * to claim; the Postgres queue's take finds them gone).
 */
import type { Logger } from '../../core/logger.js';
import type { Broker } from '../broker/broker.js';
import { publishOutbox } from '../publish-outbox.js';
import type { Db } from '../store/db.js';
import type { OutboxRow } from '../store/outbox.js';
import { Batcher } from './batcher.js';

export class OutboxSender {
  private readonly batcher: Batcher<OutboxRow, null>;

  constructor(broker: Broker, db: Db, log: Logger) {
    this.batcher = new Batcher(
      async (rows) => {
        await publishOutbox(broker, db, rows, log);
        return rows.map(() => null);
      },
      { maxInFlight: 1, maxBatch: 1000 },
    );
  }

  /** Hands rows over to be sent; publishOutbox never fails (a failed publish is left to the sweep). */
  send(rows: OutboxRow[]) {
    for (const row of rows) void this.batcher.add(row);
  }

  /** Resolves once every row handed to send is sent, or left to the stale sweep. */
  idle(): Promise<void> {
    return this.batcher.idle();
  }
}
