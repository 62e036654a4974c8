/** Dispatch of ready task instances to per-machine-kind queues. Postgres stays the truth; a message is a hint. */
import type { TaskMessage } from '../../core/states.js';
import type { Queryable } from '../store/db.js';

export interface OutgoingMessage {
  queue: string;
  priority: number;
  body: TaskMessage;
}

export interface Delivery {
  queue: string;
  body: TaskMessage;
  /** The broker delivered it before (its consumer died or released it). */
  redelivered: boolean;
  /** Removes the message for good; call only after the result is committed. */
  ack(): Promise<void>;
  /** Gives the message back for another consumer (shutdown before it was claimed). */
  release(): Promise<void>;
}

export interface Subscription {
  /** Stops intake of new deliveries; those already handed over stay held until acked or released. */
  cancel(): Promise<void>;
  /** Changes how many deliveries may be held at once; those held beyond a lower limit stay held. */
  setPrefetch(n: number): Promise<void>;
}

export interface QueueDepth {
  queue: string;
  /** Messages waiting for a consumer. */
  ready: number;
  /** Messages delivered and not yet acknowledged; null when the broker cannot tell. */
  unacked: number | null;
  consumers: number | null;
}

export interface Broker {
  readonly kind: 'rabbitmq' | 'postgres';
  /**
   * Resolves once the broker has durably accepted every message (publisher confirms). `within` is the
   * caller's open transaction: the Postgres queue writes the messages in it, so they commit with it and
   * the publish needs no second connection from the pool; RabbitMQ ignores it.
   */
  publish(messages: OutgoingMessage[], within?: Queryable): Promise<void>;
  /**
   * Readies publishing to `queues` (RabbitMQ: the publishing channel opened, the queues declared), for a
   * process that publishes once and should not spend those round trips after its commit.
   */
  prepare(queues: string[]): Promise<void>;
  /** Consumes the queues; '*' (Postgres broker only) means every queue, for standalone mode. */
  subscribe(queues: string[], prefetch: number, onDelivery: (d: Delivery) => void): Promise<Subscription>;
  depths(queues: string[]): Promise<QueueDepth[]>;
  close(): Promise<void>;
}

/** Message priorities are buckets 0..9 (RabbitMQ's x-max-priority); task priority weights are any integer. */
export function priorityBucket(weight: number): number {
  return Math.max(0, Math.min(9, Math.round(weight)));
}

export function parseTaskMessage(raw: unknown): TaskMessage | null {
  if (!raw || typeof raw !== 'object') return null;
  const m = raw as Record<string, unknown>;
  if (typeof m.runId !== 'string' || typeof m.taskId !== 'string' || !Number.isInteger(m.tryNumber))
    return null;
  return { runId: m.runId, taskId: m.taskId, tryNumber: m.tryNumber as number };
}
