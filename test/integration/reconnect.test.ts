/**
 * The scheduler and a worker lose their connections and carry on by themselves: Postgres backends
 * terminated (pool, LISTEN, the broker's queue table), RabbitMQ connections closed (consumers, publish
 * channel). Also: a queued task whose message was deleted still runs, and a backlog is not flooded.
 * Faults hit only this test's connections (found by their connection names).
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import amqp from 'amqplib';
import type { Broker } from '../../src/engine/broker/broker.js';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { dag } from '../../src/engine/dag/builder.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { Db } from '../../src/engine/store/db.js';
import { getTaskInstance, listTaskInstances, listTries } from '../../src/engine/store/task-instances.js';
import { Worker } from '../../src/engine/worker/worker.js';
import { insertDag, removeDir, sleep, startRun, tempDir, waitFor, waitForRun } from '../helpers/engine.js';
import { BROKER_URL, DATABASE_URL, freshDb, requireService, uniqueName } from '../helpers/env.js';
import {
  brokerConnections,
  closeBrokerConnections,
  ledgerCommand,
  parseLedger,
  rabbitmqctlWorks,
  terminateDbConnections,
} from '../helpers/faults.js';

type TestDb = Awaited<ReturnType<typeof freshDb>>;

for (const kind of ['postgres', 'rabbitmq'] as const) {
  describe(`reconnects and lost messages (${kind} broker)`, function () {
    this.timeout(40_000);
    const name = uniqueName('rc'); // prefix of every connection of this suite's scheduler and worker
    const prefix = `${uniqueName('rc')}.`;
    let db: TestDb; // the test's own connections (not a fault target)
    let sdb: Db;
    let wdb: Db;
    let sbroker: Broker;
    let wbroker: Broker;
    let scheduler: Scheduler;
    let worker: Worker | null = null;
    let folder: string;
    let ledger: string;

    const newBroker = async (d: Db, role: string): Promise<Broker> =>
      kind === 'postgres'
        ? new PgQueueBroker(d, { pollMs: 200, leaseMs: 3000 })
        : RabbitBroker.connect({ url: BROKER_URL, prefix, connectionName: `${name}-${role}` });

    const startWorker = async () => {
      worker = new Worker({
        db: wdb,
        broker: wbroker,
        queues: ['worker'],
        concurrency: 4,
        dagsFolder: folder,
        heartbeatMs: 200,
        graceMs: 2000,
      });
      await worker.start();
    };

    before(async function () {
      await requireService(this, 'postgres');
      if (kind === 'rabbitmq') {
        await requireService(this, 'rabbitmq');
        if (!(await rabbitmqctlWorks())) {
          if (process.env.CI === 'true') throw new Error('rabbitmqctl does not work here');
          this.skip();
        }
      }
      db = await freshDb();
      folder = await tempDir('airtasks-rc-');
      await writeFile(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
      ledger = path.join(folder, 'ledger.txt');
      await writeFile(ledger, '');
      sdb = new Db({ url: DATABASE_URL, schema: db.schema, applicationName: `${name}-scheduler` });
      wdb = new Db({ url: DATABASE_URL, schema: db.schema, applicationName: `${name}-worker` });
      sbroker = await newBroker(sdb, 'scheduler');
      wbroker = await newBroker(wdb, 'worker');
      scheduler = new Scheduler({
        db: sdb,
        broker: sbroker,
        dagsFolder: null,
        sweepIntervalMs: 500,
        zombieThresholdMs: 1500,
        outboxStaleMs: 1000,
        requeueAfterMs: 1500,
      });
      await scheduler.start();
    });

    after(async () => {
      await worker?.stop();
      await scheduler?.stop();
      if (sbroker instanceof RabbitBroker) await sbroker.deleteQueues(['worker', 'nobody']);
      await wbroker?.close();
      await sbroker?.close();
      await wdb?.close();
      await sdb?.close();
      await db?.drop();
      await removeDir(folder);
    });

    /** a -> b1..b4 -> c, each task writing ledger lines around a short sleep. */
    const chainDag = (id: string) => {
      const d = dag(id, { defaults: { retries: 0 } });
      const cmd = ledgerCommand(ledger, 'sleep 0.3');
      const a = d.bash('a', { command: cmd });
      const bs = [1, 2, 3, 4].map((i) => d.bash(`b${i}`, { command: cmd, upstream: a }));
      d.bash('c', { command: cmd, upstream: bs });
      return d;
    };

    /** Every task succeeded, and the ledger shows exactly one finished execution of each successful try. */
    const expectExactlyOnce = async (runId: string) => {
      const entries = parseLedger(await readFile(ledger, 'utf8')).filter((e) => e.runId === runId);
      for (const t of await listTaskInstances(db, runId)) {
        expect(t.state, `${t.task_id}: ${t.error}`).to.equal('success');
        const ends = entries.filter(
          (e) => e.kind === 'E' && e.taskId === t.task_id && e.tryNumber === t.try_number,
        );
        expect(ends, `${t.task_id} try ${t.try_number}`).to.have.length(1);
        // Tries before the successful one may only have been lost with a connection, never failed.
        for (const tr of await listTries(db, runId, t.task_id))
          if (tr.try_number !== t.try_number) expect(tr.error, tr.error ?? '').to.match(/lost/);
      }
    };

    it('survives its Postgres connections being terminated mid-run, twice, and keeps working after', async () => {
      await startWorker();
      const stored = await insertDag(db, chainDag('rc_db'));
      const runId = await startRun(db, stored);
      await waitFor(async () => (await getTaskInstance(db, runId, 'a'))?.state === 'running', 'a running');
      expect(await terminateDbConnections(name)).to.be.greaterThan(0);
      await waitFor(
        async () =>
          (await listTaskInstances(db, runId)).some(
            (t) => t.task_id.startsWith('b') && t.state === 'running',
          ),
        'a b task running',
      );
      expect(await terminateDbConnections(name)).to.be.greaterThan(0);
      expect((await waitForRun(db, runId, 25_000)).state).to.equal('success');
      await expectExactlyOnce(runId);
      // LISTEN, pool and (postgres broker) queue polling all came back: a new run goes through.
      const again = await startRun(db, stored);
      expect((await waitForRun(db, again, 20_000)).state).to.equal('success');
      await expectExactlyOnce(again);
    });

    if (kind === 'rabbitmq') {
      it('survives its RabbitMQ connections being closed mid-run: consumers and publishing come back', async () => {
        const stored = await insertDag(db, chainDag('rc_mq'));
        const runId = await startRun(db, stored);
        await waitFor(async () => (await getTaskInstance(db, runId, 'a'))?.state === 'running', 'a running');
        // The worker's channel dies with a delivery in hand: its ack fails, the message is requeued and
        // then acked and ignored as a duplicate once the task is done.
        expect(await closeBrokerConnections(name)).to.equal(2);
        expect((await waitForRun(db, runId, 25_000)).state).to.equal('success');
        await expectExactlyOnce(runId);
        // Both connections were re-established by themselves, and the consumer with them.
        await waitFor(async () => (await brokerConnections(name)).length === 2, 'both connections back');
        const again = await startRun(db, stored);
        await waitFor(async () => (await listTaskInstances(db, again)).length > 0, 'tasks created');
        expect(await closeBrokerConnections(name)).to.equal(2);
        expect((await waitForRun(db, again, 25_000)).state).to.equal('success');
        await expectExactlyOnce(again);
      });
    }

    it('runs a queued task whose message was deleted from the queue', async () => {
      await worker?.stop();
      worker = null;
      const d = dag('rc_lost', { defaults: { retries: 0 } });
      d.bash('only', { command: ledgerCommand(ledger, 'true') });
      const runId = await startRun(db, await insertDag(db, d));
      await waitFor(async () => (await getTaskInstance(db, runId, 'only'))?.state === 'queued', 'queued');
      await waitFor(async () => (await sbroker.depths(['worker']))[0]!.ready === 1, 'message in the queue');
      await purge('worker');
      expect((await sbroker.depths(['worker']))[0]!.ready).to.equal(0);
      // Rebuilt workers (new connections) as after a restart.
      wbroker = await reopen(wbroker, 'worker');
      await startWorker();
      expect((await waitForRun(db, runId, 20_000)).state).to.equal('success');
      const ti = await getTaskInstance(db, runId, 'only');
      // Sent again at least once (more only if the new worker was slower than requeueAfterMs to claim
      // the re-sent message: harmless, the try still ran once).
      expect(ti!.requeues).to.be.at.least(1);
      expect(ti!.try_number).to.equal(1);
      await expectExactlyOnce(runId);
    });

    it('leaves a task queued on a queue nobody consumes, with one message: no duplicates on a backlog', async () => {
      const d = dag('rc_nobody', { defaults: { retries: 0, queue: 'nobody' } });
      d.bash('waits', { command: 'true' });
      const runId = await startRun(db, await insertDag(db, d));
      await waitFor(async () => (await sbroker.depths(['nobody']))[0]!.ready === 1, 'message in the queue');
      await sleep(4000); // more than twice requeueAfterMs
      const ti = await getTaskInstance(db, runId, 'waits');
      expect(ti).to.include({ state: 'queued', requeues: 0, try_number: 1 });
      expect((await sbroker.depths(['nobody']))[0]!.ready).to.equal(1);
    });

    async function purge(queue: string) {
      if (kind === 'postgres') {
        await db.query(`DELETE FROM queue_messages WHERE queue = $1`, [queue]);
        return;
      }
      const c = await amqp.connect(BROKER_URL);
      const ch = await c.createChannel();
      await ch.purgeQueue(`${prefix}${queue}`);
      await c.close();
    }

    async function reopen(b: Broker, role: string): Promise<Broker> {
      await b.close();
      return newBroker(wdb, role);
    }
  });
}
