/**
 * Sends freshly written outbox rows to the broker, then removes them; shared by the schedulers, by workers
 * that queue the next tasks themselves and by the API when it starts a run. A failure leaves the rows for
 * the schedulers' stale sweep.
 */
import type { Logger } from '../core/logger.js';
import type { Db, Queryable } from './store/db.js';
import { deleteSentOutbox, takeOutbox, takeRunOutbox } from './store/outbox.js';
import type { OutboxRow } from './store/outbox.js';
import type { Broker } from './broker/broker.js';

/**
 * RabbitMQ: the rows are sent first and deleted after the broker's confirm, in one statement: the messages
 * leave at once after the rows' commit (a take before the send cost two round trips and a commit's flush
 * on the way to a run's first start). The stale sweep only sends rows older than its threshold (seconds),
 * so both send a row only when a publisher stalls that long between its send and its delete: a duplicate
 * message, which claims ignore; a publisher that dies before its delete leaves its rows to the sweep.
 * The Postgres queue: its messages are rows written in the transaction that takes the outbox rows (deleted,
 * locked until commit, so the sweep skips them), so both commit or neither.
 */
export async function publishOutbox(broker: Broker, db: Db, rows: OutboxRow[], log: Logger): Promise<void> {
  if (rows.length === 0) return;
  if (broker.kind === 'rabbitmq') return sendThenDelete(broker, db, rows, log);
  try {
    await db.tx(async (c) => {
      const taken = new Set(
        await takeOutbox(
          c,
          rows.map((r) => r.id),
        ),
      );
      await sendRows(
        broker,
        rows.filter((r) => taken.has(r.id)),
        c,
      );
    });
  } catch (err) {
    log.warn({ err: (err as Error).message, messages: rows.length }, 'publish failed; the outbox keeps them');
  }
}

async function sendThenDelete(broker: Broker, db: Db, rows: OutboxRow[], log: Logger): Promise<void> {
  try {
    await sendRows(broker, rows);
  } catch (err) {
    log.warn({ err: (err as Error).message, messages: rows.length }, 'publish failed; the outbox keeps them');
    return;
  }
  try {
    await deleteSentOutbox(
      db,
      rows.map((r) => r.id),
    );
  } catch (err) {
    log.warn(
      { err: (err as Error).message, messages: rows.length },
      'messages sent but their outbox rows not removed; the stale sweep sends them again',
    );
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
        await sendRows(broker, rows, c);
        return rows.length;
      });
    }
  } catch (err) {
    log.warn({ err: (err as Error).message, runId }, 'publish failed; the outbox keeps them');
  }
}

/**
 * Publishes rows, heaviest first: a worker that takes the first message before the rest arrive takes the
 * right one. `c`: the transaction that took them (the Postgres queue writes the messages in it).
 */
async function sendRows(broker: Broker, rows: OutboxRow[], c?: Queryable): Promise<void> {
  const ordered = [...rows].sort((a, b) => b.priority - a.priority);
  await broker.publish(
    ordered.map((r) => ({ queue: r.queue, priority: r.priority, body: r.payload })),
    c,
  );
}
