/**
 * One contract, two brokers: the Postgres queue and RabbitMQ must behave the same for the worker.
 */
import { expect } from 'chai';
import type { Broker, Delivery, OutgoingMessage, Subscription } from '../../src/engine/broker/broker.js';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import type { TaskMessage } from '../../src/core/states.js';
import { sleep, waitFor } from '../helpers/engine.js';
import { BROKER_URL, freshDb, requireService, uniqueName } from '../helpers/env.js';

/** Lease of the Postgres broker in these tests: short, so that an expired lease shows quickly. */
const PG_LEASE_MS = 600;

interface Harness {
  /** The broker under test. */
  broker: Broker;
  /** A second, independent broker on the same backing service: a consumer in another process. */
  another(): Promise<Broker>;
  /** How long an unacked delivery of a dead consumer takes to come back (at most). */
  returnAfterMs: number;
  teardown(queues: string[]): Promise<void>;
}

function msg(taskId: string, priority = 1, queue = 'q'): OutgoingMessage {
  return { queue, priority, body: { runId: 'run-1', taskId, tryNumber: 1 } };
}

/** Collects deliveries, counting how many are held (neither acked nor released) at once. */
class Collector {
  readonly all: Delivery[] = [];
  held = 0;
  maxHeld = 0;
  /** When true, every delivery is acked as it arrives. */
  constructor(private readonly autoAck = false) {}

  readonly onDelivery = (d: Delivery) => {
    this.held++;
    this.maxHeld = Math.max(this.maxHeld, this.held);
    const settle = (fn: () => Promise<void>) => async (): Promise<void> => {
      this.held--;
      await fn();
    };
    const wrapped: Delivery = { ...d, ack: settle(d.ack), release: settle(d.release) };
    this.all.push(wrapped);
    if (this.autoAck) void wrapped.ack();
  };

  async waitFor(n: number, what = `${n} deliveries`) {
    await waitFor(() => this.all.length >= n, what, 8000, 20);
  }

  ids(): string[] {
    return this.all.map((d) => d.body.taskId);
  }
}

function contract(kind: string, setup: () => Promise<Harness>) {
  describe(`broker contract: ${kind}`, function () {
    let h: Harness;
    const subs: Subscription[] = [];
    const queues: string[] = [];
    let n = 0;

    /** A queue of this test alone, so leftovers of one test never reach another. */
    function queue(): string {
      const q = `q${++n}`;
      queues.push(q);
      return q;
    }

    async function subscribe(b: Broker, q: string, prefetch: number, c: Collector) {
      const s = await b.subscribe([q], prefetch, c.onDelivery);
      subs.push(s);
      return s;
    }

    before(async function () {
      await requireService(this, 'postgres');
      if (kind === 'rabbitmq') await requireService(this, 'rabbitmq');
      h = await setup();
    });

    afterEach(async () => {
      for (const s of subs.splice(0)) await s.cancel().catch(() => undefined);
    });

    after(async () => {
      await h?.teardown(queues);
    });

    it('delivers a published message to a subscriber; ack removes it', async () => {
      const q = queue();
      await h.broker.publish([msg('a', 1, q)]);
      const c = new Collector();
      await subscribe(h.broker, q, 5, c);
      await c.waitFor(1);
      const d = c.all[0]!;
      expect(d.queue).to.equal(q);
      expect(d.body).to.deep.equal({ runId: 'run-1', taskId: 'a', tryNumber: 1 } satisfies TaskMessage);
      expect(d.redelivered).to.equal(false);
      await d.ack();
      await d.ack(); // a second ack is harmless
      await waitFor(async () => (await h.broker.depths([q]))[0]!.ready === 0, 'the queue to be empty');
      await sleep(200);
      expect(c.all).to.have.length(1);
    });

    it('delivers messages published after the subscription started', async () => {
      const q = queue();
      const c = new Collector(true);
      await subscribe(h.broker, q, 5, c);
      await h.broker.publish([msg('late1', 1, q), msg('late2', 1, q)]);
      await c.waitFor(2);
      expect(c.ids().sort()).to.deep.equal(['late1', 'late2']);
    });

    it('prefetch limits deliveries in flight: 2 of 5 until one is acked', async () => {
      const q = queue();
      await h.broker.publish(['m1', 'm2', 'm3', 'm4', 'm5'].map((id) => msg(id, 1, q)));
      const c = new Collector();
      await subscribe(h.broker, q, 2, c);
      await c.waitFor(2);
      await sleep(400); // longer than the Postgres broker's poll and lease extension
      expect(c.all).to.have.length(2);

      await c.all[0]!.ack();
      await c.waitFor(3, 'a third delivery after one ack');
      await sleep(300);
      expect(c.all).to.have.length(3);
      expect(c.maxHeld).to.equal(2);

      for (let i = 1; i < 5; i++) {
        await c.waitFor(i + 1);
        await c.all[i]!.ack();
      }
      expect(c.ids().sort()).to.deep.equal(['m1', 'm2', 'm3', 'm4', 'm5']);
      expect(c.maxHeld).to.equal(2);
    });

    it('setPrefetch() raises and lowers how many deliveries are held at once', async () => {
      const q = queue();
      await h.broker.publish(['p1', 'p2', 'p3', 'p4', 'p5'].map((id) => msg(id, 1, q)));
      const c = new Collector();
      const s = await subscribe(h.broker, q, 1, c);
      await c.waitFor(1);
      await s.setPrefetch(3);
      await c.waitFor(3, 'two more deliveries after the prefetch went up');
      await s.setPrefetch(1);
      await c.all[0]!.ack();
      await c.all[1]!.ack();
      await sleep(500); // longer than the Postgres broker's poll
      expect(c.all).to.have.length(3);
      await c.all[2]!.ack();
      await c.waitFor(4, 'one more once nothing is held');
      await sleep(500);
      expect(c.all).to.have.length(4);
      expect(c.maxHeld).to.equal(3);
    });

    it('release() gives the message back: it is delivered again, marked redelivered', async () => {
      const q = queue();
      await h.broker.publish([msg('r', 1, q)]);
      const c = new Collector();
      await subscribe(h.broker, q, 1, c);
      await c.waitFor(1);
      expect(c.all[0]!.redelivered).to.equal(false);
      await c.all[0]!.release();
      await c.waitFor(2, 'the released message to come back');
      expect(c.all[1]!.body).to.deep.equal(c.all[0]!.body);
      expect(c.all[1]!.redelivered).to.equal(true);
      await c.all[1]!.ack();
      await sleep(300);
      expect(c.all).to.have.length(2);
    });

    it('acks in any order settle exactly their deliveries: the oldest still held is not acked with them', async () => {
      const q = queue();
      const ids = Array.from({ length: 10 }, (_, i) => `o${i}`);
      await h.broker.publish(ids.map((id) => msg(id, 1, q)));
      const other = await h.another();
      const first = new Collector();
      await other.subscribe([q], 10, first.onDelivery);
      await first.waitFor(10);
      const byId = new Map(first.all.map((d) => [d.body.taskId, d]));
      // Newest first, some in the same turn, two released, and o0 (the oldest) kept in hand.
      await Promise.all(['o9', 'o7', 'o8'].map((id) => byId.get(id)!.ack()));
      await byId.get('o3')!.release();
      for (const id of ['o2', 'o1', 'o4', 'o6']) await byId.get(id)!.ack();
      await byId.get('o5')!.release();
      await sleep(300);
      // The released ones come back to this consumer, and only they.
      await first.waitFor(12, 'the released messages to come back');
      const again = first.all.slice(10);
      expect(again.map((d) => d.body.taskId).sort()).to.deep.equal(['o3', 'o5']);
      expect(again.every((d) => d.redelivered)).to.equal(true);
      await Promise.all(again.map((d) => d.ack()));
      await sleep(300);
      expect(first.all).to.have.length(12);

      // The consumer dies holding o0: only o0 returns, to another consumer.
      await other.close();
      const second = new Collector(true);
      await subscribe(h.broker, q, 10, second);
      await second.waitFor(1, 'the held message to come back');
      await sleep(h.returnAfterMs + 300);
      expect(second.ids()).to.deep.equal(['o0']);
    });

    it('an unacked delivery stays with its consumer while it lives and returns when it dies', async () => {
      const q = queue();
      await h.broker.publish([msg('z', 1, q)]);
      const other = await h.another();
      const first = new Collector();
      await other.subscribe([q], 1, first.onDelivery);
      await first.waitFor(1);

      const second = new Collector();
      await subscribe(h.broker, q, 1, second);
      // Held (and, for Postgres, its lease extended) for longer than one lease: not handed to anyone else.
      await sleep(h.returnAfterMs + 300);
      expect(second.all).to.have.length(0);

      // The consumer's process dies without acking (broker closed: no ack, no release).
      await other.close();
      await second.waitFor(1, 'the unacked message to come back');
      expect(second.all[0]!.body).to.deep.equal(first.all[0]!.body);
      expect(second.all[0]!.redelivered).to.equal(true);
      await second.all[0]!.ack();
    });

    it('delivers higher priorities first', async () => {
      const q = queue();
      // Published before anyone consumes, so the broker orders them all.
      await h.broker.publish([
        msg('p1', 1, q),
        msg('p5', 5, q),
        msg('p0', 0, q),
        msg('p9', 9, q),
        msg('p3', 3, q),
      ]);
      const c = new Collector(true);
      await subscribe(h.broker, q, 1, c);
      await c.waitFor(5);
      expect(c.ids()).to.deep.equal(['p9', 'p5', 'p3', 'p1', 'p0']);
    });

    it('keeps publication order within one priority', async () => {
      const q = queue();
      await h.broker.publish(['o1', 'o2', 'o3', 'o4'].map((id) => msg(id, 2, q)));
      const c = new Collector(true);
      await subscribe(h.broker, q, 1, c);
      await c.waitFor(4);
      expect(c.ids()).to.deep.equal(['o1', 'o2', 'o3', 'o4']);
    });

    it('depths() counts waiting messages per queue, and zero for an unknown queue', async () => {
      const q = queue();
      const empty = queue();
      await h.broker.publish([msg('d1', 1, q), msg('d2', 1, q), msg('d3', 1, q)]);
      const before = await h.broker.depths([q, empty]);
      expect(before.map((d) => [d.queue, d.ready])).to.deep.equal([
        [q, 3],
        [empty, 0],
      ]);
      if (kind === 'postgres') expect(before[0]!.unacked).to.equal(0);

      const c = new Collector();
      await subscribe(h.broker, q, 1, c);
      await c.waitFor(1);
      const during = await waitFor(
        async () => {
          const [d] = await h.broker.depths([q]);
          return d!.ready === 2 ? d : undefined;
        },
        'two messages ready while one is held',
        5000,
      );
      if (kind === 'postgres') expect(during.unacked).to.equal(1);
      else expect(during.consumers).to.equal(1);
      await c.all[0]!.ack();
    });

    it('cancel() stops intake while deliveries in hand can still be acked', async () => {
      const q = queue();
      await h.broker.publish([msg('c1', 1, q)]);
      const c = new Collector();
      const s = await subscribe(h.broker, q, 5, c);
      await c.waitFor(1);
      await s.cancel();
      await h.broker.publish([msg('c2', 1, q)]);
      await sleep(400);
      expect(c.ids()).to.deep.equal(['c1']);
      await c.all[0]!.ack();
      // c1 is gone for good and c2 waits for the next consumer.
      const next = new Collector(true);
      await subscribe(h.broker, q, 5, next);
      await next.waitFor(1);
      await sleep(200);
      expect(next.ids()).to.deep.equal(['c2']);
    });
  });
}

contract('postgres', async () => {
  const db = await freshDb();
  const made: Broker[] = [];
  const make = () => {
    const b = new PgQueueBroker(db, { leaseMs: PG_LEASE_MS, pollMs: 100 });
    made.push(b);
    return b;
  };
  return {
    broker: make(),
    another: async () => make(),
    returnAfterMs: PG_LEASE_MS,
    teardown: async () => {
      for (const b of made) await b.close();
      await db.drop();
    },
  };
});

contract('rabbitmq', async () => {
  const prefix = `${uniqueName('test')}.`;
  const made: RabbitBroker[] = [];
  const make = async () => {
    const b = await RabbitBroker.connect({ url: BROKER_URL, prefix });
    made.push(b);
    return b;
  };
  const broker = await make();
  return {
    broker,
    another: make,
    returnAfterMs: 300,
    teardown: async (queues) => {
      await broker.deleteQueues(queues);
      for (const b of made) await b.close();
    },
  };
});
