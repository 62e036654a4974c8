/**
 * What the autoscaler reads each pass: broker depth per queue (ready, and unacked where the broker
 * knows it) and running task instances per queue (Postgres). Every failure becomes a reading that
 * says why, per queue, so one unreachable service holds the sizes instead of zeroing them.
 */
import type { Broker } from '../../engine/broker/broker.js';
import type { QueueReading } from '../../engine/autoscale/decide.js';
import type { Logger } from '../../core/logger.js';
import type { Db } from '../../engine/store/db.js';
import { runningByQueue } from '../../engine/store/queue-load.js';
import type { Connection } from '../config.js';
import { asUserError, connectBroker, connectDb } from '../engine.js';

export class QueueInputs {
  private broker: Broker | null = null;
  /** Also where the autoscaler records its decisions. */
  readonly db: Db;

  constructor(
    private readonly conn: Connection,
    private readonly log: Logger,
  ) {
    // The pool connects on use and replaces lost connections, so a database outage only fails passes.
    this.db = connectDb(conn, { logger: log, maxConnections: 2 });
  }

  async read(queues: string[]): Promise<Map<string, QueueReading>> {
    const out = new Map<string, QueueReading>();
    let running: Map<string, number>;
    try {
      running = await runningByQueue(this.db);
    } catch (err) {
      // Worded as every other command words the same failure (connectBroker does it for the broker).
      const e = asUserError(err, 'database', this.conn);
      for (const q of queues) out.set(q, { ok: false, error: `database read failed: ${message(e)}` });
      return out;
    }
    let broker: Broker;
    try {
      broker = await this.openBroker();
    } catch (err) {
      for (const q of queues) out.set(q, { ok: false, error: `broker unreachable: ${message(err)}` });
      return out;
    }
    for (const q of queues) {
      try {
        const [d] = await broker.depths([q]);
        out.set(q, { ok: true, ready: d!.ready, unacked: d!.unacked, running: running.get(q) ?? 0 });
      } catch (err) {
        out.set(q, { ok: false, error: `broker depth of ${q} failed: ${message(err)}` });
      }
    }
    return out;
  }

  /** Opened on first use and kept; amqplib's recovery reconnects it (Postgres queue: the same pool). */
  private async openBroker(): Promise<Broker> {
    this.broker ??= await connectBroker(this.db, this.conn, this.log);
    return this.broker;
  }

  async close(): Promise<void> {
    await this.broker?.close().catch(() => undefined);
    this.broker = null;
    await this.db.close().catch(() => undefined);
  }
}

function message(err: unknown): string {
  const e = err as { message?: string; code?: string };
  return (e?.message || e?.code || String(err)).split('\n')[0]!;
}
