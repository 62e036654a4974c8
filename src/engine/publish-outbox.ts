/**
 * Sends freshly written outbox rows to the broker, then removes them; shared by the schedulers and by
 * workers that queue the next tasks themselves. A failure leaves the rows for the schedulers' stale sweep.
 */
import type { Logger } from '../core/logger.js';
import type { Db } from './store/db.js';
import { deleteOutbox } from './store/outbox.js';
import type { OutboxRow } from './store/outbox.js';
import type { Broker } from './broker/broker.js';

export async function publishOutbox(broker: Broker, db: Db, rows: OutboxRow[], log: Logger): Promise<void> {
  if (rows.length === 0) return;
  // Heaviest first: a worker that takes the first message before the rest arrive takes the right one.
  const ordered = [...rows].sort((a, b) => b.priority - a.priority);
  try {
    await broker.publish(ordered.map((r) => ({ queue: r.queue, priority: r.priority, body: r.payload })));
    await deleteOutbox(
      db,
      rows.map((r) => r.id),
    );
  } catch (err) {
    log.warn({ err: (err as Error).message, messages: rows.length }, 'publish failed; the outbox keeps them');
  }
}
