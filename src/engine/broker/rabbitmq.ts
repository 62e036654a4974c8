/**
 * RabbitMQ broker: a durable direct exchange, one durable priority queue per task queue (routing key =
 * queue name), persistent messages, publisher confirms, manual acks. amqplib's recovery reconnects;
 * consumers are re-created after each reconnect and unacked deliveries return to the queue by themselves.
 */
import amqp, { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage } from 'amqplib';
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
import { TurnAcks } from './turn-acks.js';

export interface RabbitOptions {
  url: string;
  /** Prefix of exchange and queue names: lets tests and several installations share one vhost. */
  prefix?: string;
  logger?: Logger;
  /** Shown by RabbitMQ as the connection's name (client property connection_name). */
  connectionName?: string;
  /** How long the first connection (TCP and AMQP handshake, retries included) may take; default 10 s. */
  connectTimeoutMs?: number;
}

interface Consumer {
  queues: string[];
  prefetch: number;
  onDelivery: (d: Delivery) => void;
  channel: Channel | null;
  cancelled: boolean;
  /** A restart of this consumer is under way (see consumerLost). */
  restarting?: boolean;
}

const QUEUE_ARGS = { durable: true, arguments: { 'x-max-priority': 10 } };

export class RabbitBroker implements Broker {
  readonly kind = 'rabbitmq' as const;
  private conn!: amqp.RecoveringChannelModel;
  private model: ChannelModel | null = null;
  private publishChannel: Promise<ConfirmChannel> | null = null;
  private readonly asserted = new Set<string>();
  private readonly consumers = new Set<Consumer>();
  private readonly log: Logger;
  private readonly exchange: string;

  private constructor(private readonly opts: RabbitOptions) {
    this.log = opts.logger ?? silentLogger;
    this.exchange = `${opts.prefix ?? ''}airtasks.tasks`;
  }

  static async connect(opts: RabbitOptions): Promise<RabbitBroker> {
    const b = new RabbitBroker(opts);
    const timeoutMs = opts.connectTimeoutMs ?? 10_000;
    b.conn = await amqp.connect(opts.url, {
      clientProperties: { connection_name: opts.connectionName ?? 'airtasks' },
      // Bounds each attempt's TCP connect and AMQP handshake: a server that accepts and never speaks
      // AMQP would otherwise hold the first connection, and any reconnect, for ever.
      timeout: timeoutMs,
      recovery: {
        initialDelay: 100,
        maxDelay: 5000,
        initialMaxRetries: 3,
        waitForConnect: false,
        setup: async (model: ChannelModel) => b.onConnect(model),
      },
    });
    b.conn.on('connect-failed', (err: Error) =>
      b.log.debug({ err: err.message }, 'broker connection attempt failed'),
    );
    b.conn.on('disconnect', (err: Error) => {
      b.model = null;
      b.publishChannel = null;
      b.asserted.clear();
      for (const c of b.consumers) c.channel = null;
      b.log.warn({ err: err?.message }, 'broker connection lost; reconnecting');
    });
    b.conn.on('error', (err: Error) => b.log.warn({ err: err.message }, 'broker connection error'));
    try {
      await firstConnection(b.conn, timeoutMs);
    } catch (err) {
      await b.conn.close().catch(() => undefined);
      throw err;
    }
    return b;
  }

  private async onConnect(model: ChannelModel) {
    const firstTime = this.model === null && this.consumers.size === 0;
    this.model = model;
    this.publishChannel = null;
    this.asserted.clear();
    // Channels here must come from `model`: the recovering connection hands out channels only after
    // this setup returns, so asking it would wait for ever (consumers were never re-created).
    for (const c of this.consumers) if (!c.cancelled) await this.startConsumer(c, model);
    if (!firstTime) this.log.info('broker connection restored');
  }

  queueName(queue: string): string {
    return `${this.opts.prefix ?? ''}${queue}`;
  }

  private async assertQueue(ch: Channel, queue: string) {
    if (this.asserted.has(queue)) return;
    await ch.assertExchange(this.exchange, 'direct', { durable: true });
    await ch.assertQueue(this.queueName(queue), QUEUE_ARGS);
    await ch.bindQueue(this.queueName(queue), this.exchange, queue);
    this.asserted.add(queue);
  }

  private async confirmChannel(): Promise<ConfirmChannel> {
    if (!this.publishChannel) {
      const p = this.conn.createConfirmChannel();
      this.publishChannel = p;
      p.then(
        (ch) =>
          ch.on('close', () => {
            if (this.publishChannel === p) this.publishChannel = null;
            this.asserted.clear();
          }),
        () => {
          if (this.publishChannel === p) this.publishChannel = null;
        },
      );
    }
    return this.publishChannel;
  }

  async prepare(queues: string[]): Promise<void> {
    const ch = await this.confirmChannel();
    for (const q of new Set(queues)) await this.assertQueue(ch, q);
  }

  async publish(messages: OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const ch = await this.confirmChannel();
    for (const q of new Set(messages.map((m) => m.queue))) await this.assertQueue(ch, q);
    for (const m of messages) {
      const ok = ch.publish(this.exchange, m.queue, Buffer.from(JSON.stringify(m.body)), {
        persistent: true,
        priority: priorityBucket(m.priority),
        contentType: 'application/json',
      });
      if (!ok) await new Promise((r) => ch.once('drain', r));
    }
    await ch.waitForConfirms();
  }

  async subscribe(
    queues: string[],
    prefetch: number,
    onDelivery: (d: Delivery) => void,
  ): Promise<Subscription> {
    if (queues.includes('*'))
      throw new Error("RabbitMQ workers name their queues ('*' is for the Postgres broker)");
    const c: Consumer = { queues, prefetch, onDelivery, channel: null, cancelled: false };
    this.consumers.add(c);
    await this.startConsumer(c);
    return {
      cancel: async () => {
        c.cancelled = true;
        this.consumers.delete(c);
        const ch = c.channel;
        if (!ch) return;
        // Stop intake but keep the channel open so deliveries in hand can still be acked.
        for (const tag of (ch as Channel & { __tags?: string[] }).__tags ?? [])
          await ch.cancel(tag).catch(() => undefined);
      },
      // A consumer started after this (a reconnect) asks for c.prefetch itself.
      setPrefetch: async (n) => {
        c.prefetch = n;
        await c.channel?.prefetch(n, true).catch(() => undefined);
      },
    };
  }

  private async startConsumer(c: Consumer, model?: ChannelModel) {
    const ch = await (model ?? this.conn).createChannel();
    ch.on('error', (err: Error) => this.log.warn({ err: err.message }, 'consumer channel error'));
    ch.on('close', () => this.consumerLost(c, ch));
    for (const q of c.queues) await this.assertQueue(ch, q);
    // global=true: the limit is shared by every queue this worker consumes (its slots and those waiting).
    await ch.prefetch(c.prefetch, true);
    const tags: string[] = [];
    const acks = new TurnAcks((tag, multiple) =>
      this.onItsChannel('ack', () => ch.ack({ fields: { deliveryTag: tag } } as ConsumeMessage, multiple)),
    );
    for (const q of c.queues) {
      const { consumerTag } = await ch.consume(
        this.queueName(q),
        // null: the server cancelled the consumer (its queue was deleted): start over on a new channel.
        (msg) => (msg ? this.deliver(c, ch, acks, q, msg) : void ch.close().catch(() => undefined)),
        {
          noAck: false,
        },
      );
      tags.push(consumerTag);
    }
    (ch as Channel & { __tags?: string[] }).__tags = tags;
    c.channel = ch;
  }

  /**
   * A consumer channel closed while its connection stayed up (a channel error, a cancel by the server):
   * consume again on a new channel. When the whole connection went, the recovery setup does it instead.
   */
  private consumerLost(c: Consumer, ch: Channel) {
    if (c.channel !== ch) return;
    c.channel = null;
    setTimeout(() => {
      if (c.cancelled || c.channel || c.restarting || !this.model) return;
      c.restarting = true;
      this.log.warn({ queues: c.queues }, 'consumer channel closed; consuming again');
      this.startConsumer(c)
        .catch((err: Error) => this.log.warn({ err: err.message }, 'restarting a consumer failed'))
        .finally(() => (c.restarting = false));
    }, 500).unref();
  }

  private deliver(c: Consumer, ch: Channel, acks: TurnAcks, queue: string, msg: ConsumeMessage) {
    let settled = false;
    const settle = (fn: () => void) => async () => {
      if (settled) return;
      settled = true;
      fn();
    };
    let body = null;
    try {
      body = parseTaskMessage(JSON.parse(msg.content.toString('utf8')));
    } catch {
      body = null;
    }
    if (!body) {
      this.log.error(
        { queue, content: msg.content.toString('utf8').slice(0, 200) },
        'malformed message dropped',
      );
      ch.ack(msg);
      return;
    }
    const tag = msg.fields.deliveryTag;
    acks.delivered(tag);
    c.onDelivery({
      queue,
      body,
      redelivered: msg.fields.redelivered,
      ack: settle(() => acks.ack(tag)),
      release: settle(() => {
        acks.released(tag);
        this.onItsChannel('release', () => ch.nack(msg, false, true));
      }),
    });
  }

  /**
   * Settles a delivery on its channel. A delivery belongs to its channel: once that channel is gone
   * RabbitMQ has requeued it, so a failed ack or release is fine.
   */
  private onItsChannel(what: 'ack' | 'release', fn: () => void) {
    try {
      fn();
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, `${what} on a closed channel ignored`);
    }
  }

  async depths(queues: string[]): Promise<QueueDepth[]> {
    const out: QueueDepth[] = [];
    for (const q of queues) {
      // checkQueue closes its channel when the queue does not exist, so each check gets its own.
      const ch = await this.conn.createChannel();
      ch.on('error', () => undefined);
      try {
        const r = await ch.checkQueue(this.queueName(q));
        out.push({ queue: q, ready: r.messageCount, unacked: null, consumers: r.consumerCount });
      } catch (err) {
        // A queue nobody declared yet holds nothing; any other failure is not a depth of 0.
        if ((err as { code?: unknown }).code !== 404) throw err;
        out.push({ queue: q, ready: 0, unacked: null, consumers: 0 });
      } finally {
        await ch.close().catch(() => undefined);
      }
    }
    return out;
  }

  /** Deletes this broker's queues; for tests that made their own prefix. */
  async deleteQueues(queues: string[]) {
    const ch = await this.conn.createChannel();
    for (const q of queues) await ch.deleteQueue(this.queueName(q)).catch(() => undefined);
    await ch.deleteExchange(this.exchange).catch(() => undefined);
    await ch.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    for (const c of this.consumers) c.cancelled = true;
    this.consumers.clear();
    await this.conn.close().catch(() => undefined);
  }
}

/** The first connection within `timeoutMs` for all its attempts, so that startup fails in bounded time. */
function firstConnection(conn: amqp.RecoveringChannelModel, timeoutMs: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`no AMQP handshake within ${timeoutMs} ms`) as NodeJS.ErrnoException;
      err.code = 'ETIMEDOUT';
      reject(err);
    }, timeoutMs);
  });
  return Promise.race([conn.waitForConnect(), deadline]).finally(() => clearTimeout(timer));
}
