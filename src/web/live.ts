/**
 * Live updates: one server-sent-event stream per page. The server polls a cheap change stamp of what the
 * page shows (services/dashboard.ts changeStamp) once a second, one poll per topic however many pages
 * watch it, and sends `change` when it moved (and once to each page that just subscribed, see Topic.fresh);
 * the page then fetches what it shows from the API.
 * Why polling and not LISTEN/NOTIFY: workers deliberately send no NOTIFY for most results (one NOTIFY per
 * task serialised commits and capped throughput, docs/architecture.md), so NOTIFY would miss changes;
 * see docs/web.md for the measurements.
 */
import type { FastifyReply } from 'fastify';
import type { Logger } from '../core/logger.js';

export const POLL_MS = 1000;
const PING_MS = 15_000;

interface Topic {
  clients: Set<FastifyReply>;
  /**
   * Clients subscribed since the last reading. Each gets a `change` after the first reading that ends once
   * it is here: what it loaded before subscribing may predate the stamp the topic compares with (a run that
   * ended between the page's fetch and its subscription would otherwise never be shown ending).
   */
  fresh: Set<FastifyReply>;
  stamp: string | null;
  timer: NodeJS.Timeout;
}

export class LiveHub {
  private readonly topics = new Map<string, Topic>();

  constructor(
    private readonly stampOf: (topic: string) => Promise<string>,
    private readonly logger: Logger,
  ) {}

  subscribe(topic: string, reply: FastifyReply) {
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no', // the stack's proxy must pass events on at once
    });
    reply.raw.write(`retry: 2000\n\n`);
    let t = this.topics.get(topic);
    if (!t) {
      const created: Topic = {
        clients: new Set(),
        fresh: new Set(),
        stamp: null,
        timer: setInterval(() => void this.poll(topic), POLL_MS),
      };
      this.topics.set(topic, created);
      t = created;
    }
    t.clients.add(reply);
    t.fresh.add(reply);
    void this.poll(topic);
    const ping = setInterval(() => reply.raw.write(`: ping\n\n`), PING_MS);
    reply.raw.on('close', () => {
      clearInterval(ping);
      const topicNow = this.topics.get(topic);
      topicNow?.clients.delete(reply);
      topicNow?.fresh.delete(reply);
      if (topicNow && topicNow.clients.size === 0) {
        clearInterval(topicNow.timer);
        this.topics.delete(topic);
      }
    });
  }

  private polling = new Set<string>();

  private async poll(topic: string) {
    if (this.polling.has(topic)) return; // a slow poll is not stacked
    this.polling.add(topic);
    try {
      const stamp = await this.stampOf(topic);
      const t = this.topics.get(topic);
      if (!t) return;
      const changed = t.stamp !== null && stamp !== t.stamp;
      t.stamp = stamp;
      for (const c of changed ? t.clients : t.fresh)
        c.raw.write(`event: change\ndata: ${JSON.stringify({ topic })}\n\n`);
      t.fresh.clear();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, topic }, 'live update poll failed');
    } finally {
      this.polling.delete(topic);
    }
  }

  close() {
    for (const t of this.topics.values()) {
      clearInterval(t.timer);
      for (const c of t.clients) c.raw.end();
    }
    this.topics.clear();
  }
}
