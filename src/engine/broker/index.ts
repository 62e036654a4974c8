import type { Db } from '../store/db.js';
import type { Logger } from '../../core/logger.js';
import type { Broker } from './broker.js';
import { PgQueueBroker } from './pg-queue.js';
import { RabbitBroker } from './rabbitmq.js';

export type { Broker, Delivery, OutgoingMessage, QueueDepth, Subscription } from './broker.js';

/** RabbitMQ when a broker URL is given, otherwise the Postgres queue in the same database. */
export async function createBroker(
  db: Db,
  opts: {
    url?: string;
    prefix?: string;
    logger?: Logger;
    leaseMs?: number;
    connectionName?: string;
    connectTimeoutMs?: number;
  },
): Promise<Broker> {
  if (opts.url)
    return RabbitBroker.connect({
      url: opts.url,
      prefix: opts.prefix,
      logger: opts.logger,
      connectionName: opts.connectionName,
      connectTimeoutMs: opts.connectTimeoutMs,
    });
  return new PgQueueBroker(db, { logger: opts.logger, leaseMs: opts.leaseMs });
}
