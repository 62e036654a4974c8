/**
 * The outbox is sent, once while its publisher keeps up: the schedulers' stale sweep leaves fresh rows to
 * their publisher, and with the Postgres queue the two never both send a row; with RabbitMQ the rows are sent
 * before they are deleted, so only a publisher stalled past the sweep's threshold and the sweep both send
 * (a duplicate message, never a lost one). Rows whose publish failed are still sent (by the sweep). A
 * worker's sender puts the rows that come while it publishes into its next publish.
 */
import { expect } from 'chai';
import type { Broker, OutgoingMessage } from '../../src/engine/broker/broker.js';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import type { Queryable } from '../../src/engine/store/db.js';
import { deleteSentOutbox, type OutboxRow } from '../../src/engine/store/outbox.js';
import { publishOutbox } from '../../src/engine/publish-outbox.js';
import { OutboxSender } from '../../src/engine/worker/outbox-sender.js';
import { LostMessages } from '../../src/engine/scheduler/lost-messages.js';
import { silentLogger } from '../../src/core/logger.js';
import { BROKER_URL, freshDb, requireService, uniqueName } from '../helpers/env.js';

const N = 20;

/**
 * A real broker whose first publish waits until released: the window in which a publisher has sent (or
 * is sending) its rows and not yet committed their removal. Fails its first publish when told to.
 */
class HeldBroker implements Broker {
  readonly kind: Broker['kind'];
  private release!: () => void;
  private readonly gate = new Promise<void>((r) => (this.release = r));
  private calls = 0;
  /** How many messages each publish carried. */
  readonly batches: number[] = [];
  entered!: Promise<void>;
  private entered_!: () => void;

  constructor(
    private readonly inner: Broker,
    private readonly failFirst = false,
  ) {
    this.kind = inner.kind;
    this.entered = new Promise<void>((r) => (this.entered_ = r));
  }

  open() {
    this.release();
  }

  async publish(messages: OutgoingMessage[], within?: Queryable): Promise<void> {
    this.batches.push(messages.length);
    if (this.calls++ === 0) {
      this.entered_();
      await this.gate;
      if (this.failFirst) throw new Error('broker unavailable');
    }
    await this.inner.publish(messages, within);
  }
  prepare: Broker['prepare'] = (...a) => this.inner.prepare(...a);
  subscribe: Broker['subscribe'] = (...a) => this.inner.subscribe(...a);
  depths: Broker['depths'] = (q) => this.inner.depths(q);
  close = () => this.inner.close();
}

/** `n` outbox rows for tasks of one run, as a run's start writes them. */
async function writeOutboxRows(db: Queryable, queue: string, n: number): Promise<OutboxRow[]> {
  const r = await db.query<OutboxRow>(
    `INSERT INTO outbox (queue, priority, payload)
     SELECT $1, 1, jsonb_build_object('runId', 'r', 'taskId', 't' || i, 'tryNumber', 1)
     FROM generate_series(1, $2) AS i RETURNING id, queue, priority, payload`,
    [queue, n],
  );
  return r.rows;
}

for (const kind of ['postgres', 'rabbitmq'] as const) {
  describe(`outbox publishing: ${kind}`, function () {
    let db: Awaited<ReturnType<typeof freshDb>>;
    let real: Broker;
    let queue: string;

    before(async function () {
      await requireService(this, 'postgres');
      if (kind === 'rabbitmq') await requireService(this, 'rabbitmq');
    });

    beforeEach(async () => {
      db = await freshDb();
      real =
        kind === 'rabbitmq'
          ? await RabbitBroker.connect({ url: BROKER_URL, prefix: `${uniqueName('test')}.` })
          : new PgQueueBroker(db, { pollMs: 100 });
      queue = 'outbox_q';
    });

    afterEach(async () => {
      if (real instanceof RabbitBroker) await real.deleteQueues([queue]);
      await real.close();
      await db.drop();
    });

    const writeOutbox = () => writeOutboxRows(db, queue, N);

    /** The schedulers' sweep; by default every row counts as stale at once. */
    function sweep(broker: Broker, outboxStaleMs = 0) {
      return new LostMessages({
        db,
        broker,
        publish: async () => {},
        log: silentLogger,
        outboxStaleMs,
        requeueAfterMs: 60_000,
        stopping: new AbortController().signal,
      });
    }

    async function published(): Promise<number> {
      if (kind === 'postgres') {
        const r = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM queue_messages WHERE queue = $1`,
          [queue],
        );
        return r.rows[0]!.n;
      }
      return (await real.depths([queue]))[0]!.ready;
    }

    async function outboxLeft(): Promise<number> {
      return (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox`)).rows[0]!.n;
    }

    async function unlockedRows(): Promise<number> {
      return db.tx(
        async (c) => (await c.query(`SELECT id FROM outbox FOR UPDATE SKIP LOCKED`)).rowCount ?? Number.NaN,
      );
    }

    it('sends each row once when the stale sweep runs while the publisher sends fresh rows', async () => {
      const rows = await writeOutbox();
      const held = new HeldBroker(real);
      const publishing = publishOutbox(held, db, rows, silentLogger);
      await held.entered;
      await sweep(held, 5000).republishStaleOutbox();
      held.open();
      await publishing;
      expect(await published()).to.equal(N);
      expect(await outboxLeft()).to.equal(0);
    });

    if (kind === 'postgres') {
      it('sends each row once even when the sweep finds them stale while the publisher is sending', async () => {
        const rows = await writeOutbox();
        const held = new HeldBroker(real);
        const publishing = publishOutbox(held, db, rows, silentLogger);
        await held.entered;
        // Taken (deleted, locked until the publish's commit): the sweep skips them.
        expect(await unlockedRows()).to.equal(0);
        await sweep(held).republishStaleOutbox();
        held.open();
        await publishing;
        expect(await published()).to.equal(N);
        expect(await outboxLeft()).to.equal(0);
      });
    } else {
      it('holds no transaction while it waits for the broker, and removes the rows after its confirm', async () => {
        const rows = await writeOutbox();
        const held = new HeldBroker(real);
        const publishing = publishOutbox(held, db, rows, silentLogger);
        await held.entered;
        expect(await unlockedRows()).to.equal(N);
        held.open();
        await publishing;
        expect(await published()).to.equal(N);
        expect(await outboxLeft()).to.equal(0);
      });

      it('sends rows again, never loses them, when the publisher stalls past the sweep threshold', async () => {
        const rows = await writeOutbox();
        const held = new HeldBroker(real);
        const publishing = publishOutbox(held, db, rows, silentLogger);
        await held.entered;
        await sweep(real).republishStaleOutbox();
        held.open();
        await publishing;
        // Twice each: claims are conditional, so the second message of a try finds nothing to claim.
        expect(await published()).to.equal(2 * N);
        expect(await outboxLeft()).to.equal(0);
      });
    }

    it('keeps the rows of a failed publish, and the sweep sends them once', async () => {
      const rows = await writeOutbox();
      const held = new HeldBroker(real, true);
      const publishing = publishOutbox(held, db, rows, silentLogger);
      await held.entered;
      held.open();
      await publishing;
      expect(await published()).to.equal(0);
      expect(await outboxLeft()).to.equal(N);
      await sweep(real).republishStaleOutbox();
      expect(await published()).to.equal(N);
      expect(await outboxLeft()).to.equal(0);
    });

    it('sends the rows that come while it publishes together, in one publish', async () => {
      const rows = await writeOutbox();
      const held = new HeldBroker(real);
      const sender = new OutboxSender(held, db, silentLogger);
      sender.send(rows.slice(0, 1));
      await held.entered;
      for (const row of rows.slice(1)) sender.send([row]);
      held.open();
      await sender.idle();
      expect(held.batches).to.deep.equal([1, N - 1]);
      expect(await published()).to.equal(N);
      expect(await outboxLeft()).to.equal(0);
    });

    it('leaves a failed publish to the sweep and still sends the rows that came after it', async () => {
      const rows = await writeOutbox();
      const held = new HeldBroker(real, true);
      const sender = new OutboxSender(held, db, silentLogger);
      sender.send(rows.slice(0, 1));
      await held.entered;
      sender.send(rows.slice(1));
      held.open();
      await sender.idle();
      expect(await published()).to.equal(N - 1);
      expect(await outboxLeft()).to.equal(1);
      await sweep(real).republishStaleOutbox();
      expect(await published()).to.equal(N);
      expect(await outboxLeft()).to.equal(0);
    });
  });
}

describe('removing sent outbox rows', function () {
  before(async function () {
    await requireService(this, 'postgres');
  });

  it('deletes only the rows given; its transaction, and no other, commits without waiting for the flush', async () => {
    const db = await freshDb();
    try {
      const ids = (await writeOutboxRows(db, 'q', 3)).map((r) => r.id);
      const setting = await db.tx(async (c) => {
        await deleteSentOutbox(c, ids.slice(0, 2));
        return (await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!
          .synchronous_commit;
      });
      expect(setting).to.equal('off');
      const left = await db.query<{ id: number }>(`SELECT id FROM outbox`);
      expect(left.rows.map((r) => r.id)).to.deep.equal([ids[2]]);
      const after = await db.tx(
        async (c) =>
          (await c.query<{ synchronous_commit: string }>('SHOW synchronous_commit')).rows[0]!
            .synchronous_commit,
      );
      expect(after).to.equal('on');
    } finally {
      await db.drop();
    }
  });
});
