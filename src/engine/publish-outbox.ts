/**
 * Sends freshly written outbox rows to the broker, then removes them; shared by the schedulers and by
 * workers that queue the next tasks themselves. A failure leaves the rows for the schedulers' stale sweep.
 */
import type { Logger } from '../core/logger.js';
import type { Db, Queryable } from './store/db.js';
import { takeOutbox, takeRunOutbox } from './store/outbox.js';
import type { OutboxRow } from './store/outbox.js';
import type { Broker } from './broker/broker.js';

export async function publishOutbox(broker: Broker, db: Db, rows: OutboxRow[], log: Logger): Promise<void> {
  if (rows.length === 0) return;
  try {
    // The rows are taken (deleted, locked until commit) before they are sent, so the stale sweep, which
    // skips locked rows, never sends them too; a rollback (failed publish, lost process) leaves them.
    await db.tx(async (c) => {
      const taken = new Set(
        await takeOutbox(
          c,
          rows.map((r) => r.id),
        ),
      );
      await sendTaken(
        broker,
        rows.filter((r) => taken.has(r.id)),
        c,
      );
    });
  } catch (err) {
    log.warn({ err: (err as Error).message, messages: rows.length }, 'publish failed; the outbox keeps them');
  }
}

/**
 * Sends the outbox rows of a run that a process without a broker started (see start-run.ts), a thousand
 * per transaction, taken as publishOutbox takes them. A failure leaves them for the stale sweep.
 */
export async function publishRunOutbox(broker: Broker, db: Db, runId: string, log: Logger): Promise<void> {
  const batch = 1000;
  try {
    for (let taken = batch; taken === batch;) {
      taken = await db.tx(async (c) => {
        const rows = await takeRunOutbox(c, runId, batch);
        await sendTaken(broker, rows, c);
        return rows.length;
      });
    }
  } catch (err) {
    log.warn({ err: (err as Error).message, runId }, 'publish failed; the outbox keeps them');
  }
}

/**
 * Publishes rows taken in transaction `c`, heaviest first: a worker that takes the first message before the
 * rest arrive takes the right one.
 */
async function sendTaken(broker: Broker, rows: OutboxRow[], c: Queryable): Promise<void> {
  const ordered = [...rows].sort((a, b) => b.priority - a.priority);
  await broker.publish(
    ordered.map((r) => ({ queue: r.queue, priority: r.priority, body: r.payload })),
    c,
  );
}
