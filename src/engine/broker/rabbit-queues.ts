/**
 * How the RabbitMQ broker declares a task queue: durable, with priorities, as a classic queue of version 2
 * (RabbitMQ spends about a third less CPU per persistent message on those than on version 1, the default
 * before RabbitMQ 4, with the same confirm after the message is on disk; servers that do not know the
 * argument keep it as data). RabbitMQ refuses a declaration whose arguments differ from an existing queue's
 * and closes the channel that asked, so each step has a channel of its own, and a queue that an airtasks from
 * before declared without the version is used as it is.
 */
import type { Channel } from 'amqplib';

const QUEUE_ARGS = { durable: true, arguments: { 'x-max-priority': 10, 'x-queue-version': 2 } };
const V1_QUEUE_ARGS = { durable: true, arguments: { 'x-max-priority': 10 } };

export const OLDER_QUEUE_WARNING =
  'queue declared by an older airtasks (classic queue version 1): used as it is; version 2 costs ' +
  'RabbitMQ less CPU per message: delete the queue while it is empty, or apply a queue-version policy';

/**
 * Declares `exchange` (direct, durable) and the queue `name`, bound to it with `routingKey`, on channels
 * from `open`. Returns the queue's name when it was found declared as version 1, else null.
 */
export async function declareQueue(
  open: () => Promise<Channel>,
  exchange: string,
  name: string,
  routingKey: string,
): Promise<string | null> {
  const declare = async <T>(fn: (ch: Channel) => Promise<T>): Promise<T> => {
    const ch = await open();
    ch.on('error', () => undefined);
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => undefined);
    }
  };
  let older: string | null = null;
  await declare(async (ch) => {
    await ch.assertExchange(exchange, 'direct', { durable: true });
    await ch.assertQueue(name, QUEUE_ARGS);
  }).catch(async (err: unknown) => {
    if (!isOlderQueue(err)) throw err;
    await declare((ch) => ch.assertQueue(name, V1_QUEUE_ARGS));
    older = name;
  });
  await declare((ch) => ch.bindQueue(name, exchange, routingKey));
  return older;
}

/** RabbitMQ's refusal of a queue's declaration because the queue exists without a version argument. */
function isOlderQueue(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  return e?.code === 406 && typeof e.message === 'string' && e.message.includes("arg 'x-queue-version'");
}
