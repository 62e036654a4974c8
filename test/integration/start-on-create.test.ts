/**
 * Runs started in the statement that creates them (engine/start-run.ts): what is written, when the run is
 * left queued for the schedulers instead, and a scheduler sending the first messages of a run started by a
 * process with no broker.
 */
import { expect } from 'chai';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { dag } from '../../src/engine/dag/builder.js';
import type { DagOptions } from '../../src/engine/dag/options.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { createRun, firstTasks } from '../../src/engine/start-run.js';
import { setPaused } from '../../src/engine/store/dags.js';
import type { OutboxRow } from '../../src/engine/store/outbox.js';
import { getRun } from '../../src/engine/store/runs.js';
import { listTaskInstances } from '../../src/engine/store/task-instances.js';
import { Worker } from '../../src/engine/worker/worker.js';
import { insertDag, removeDir, tempDir, waitForRun, type StoredDag } from '../helpers/engine.js';
import { BROKER_URL, DATABASE_URL, freshDb, requireService, uniqueName } from '../helpers/env.js';
import { triggerDag, type RunSummary } from '../../src/services/trigger.js';

function plainDag(id: string, options: DagOptions = {}) {
  const d = dag(id, options);
  const a = d.bash('a', { command: 'true' });
  const b = d.bash('b', { command: 'true' });
  d.bash('c', { command: 'true', upstream: [a, b] });
  return d;
}

describe('runs started where they are created', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof freshDb>>;
  let plain: StoredDag;

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    plain = await insertDag(db, plainDag('plain'));
  });

  after(async () => {
    await db?.drop();
  });

  const newRun = (d: StoredDag, runId = uniqueName('run')) => ({
    runId,
    dagId: d.dagId,
    dagHash: d.hash,
    conf: { n: 1 },
  });

  /** The outbox rows of a run (what a publisher would send). */
  async function outboxOf(runId: string) {
    const r = await db.query<{ payload: { runId: string; taskId: string; tryNumber: number } }>(
      `SELECT payload FROM outbox WHERE payload->>'runId' = $1 ORDER BY payload->>'taskId'`,
      [runId],
    );
    return r.rows.map((x) => x.payload);
  }

  /** What the events channel carries while fn runs. */
  async function notified(fn: () => Promise<unknown>): Promise<string[]> {
    const seen: string[] = [];
    const l = db.listen([db.channel('events')], (_ch, p) => seen.push(p));
    await l.ready;
    try {
      await fn();
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await l.close();
    }
    return seen;
  }

  it('starts the run with its first tasks queued and their messages in the outbox, told to the schedulers', async () => {
    const run = newRun(plain);
    let outcome = '';
    const seen = await notified(async () => (outcome = await createRun(db, run, plain.serialized, null)));
    expect(outcome).to.equal('started');
    const row = (await getRun(db, run.runId))!;
    expect(row.state).to.equal('running');
    expect(row.started_at).to.be.instanceOf(Date);
    expect(row.conf).to.deep.equal({ n: 1 });
    const tis = new Map((await listTaskInstances(db, run.runId)).map((t) => [t.task_id, t]));
    expect([...tis.keys()].sort()).to.deep.equal(['a', 'b', 'c']);
    for (const id of ['a', 'b']) {
      expect(tis.get(id)!.state).to.equal('queued');
      expect(tis.get(id)!.try_number).to.equal(1);
    }
    expect(tis.get('c')!.state).to.equal('none');
    expect(tis.get('c')!.try_number).to.equal(0);
    expect(await outboxOf(run.runId)).to.deep.equal([
      { runId: run.runId, taskId: 'a', tryNumber: 1 },
      { runId: run.runId, taskId: 'b', tryNumber: 1 },
    ]);
    expect(seen).to.deep.equal([`outbox:${run.runId}`]);
  });

  it('hands the messages to its publisher when it has one, and a taken run id changes nothing', async () => {
    const run = newRun(plain);
    const sent: OutboxRow[] = [];
    const seen = await notified(() =>
      createRun(db, run, plain.serialized, async (rows) => {
        sent.push(...rows);
      }),
    );
    expect(sent.map((r) => r.payload.taskId).sort()).to.deep.equal(['a', 'b']);
    expect(sent.every((r) => typeof r.id === 'number' && r.queue === 'worker')).to.equal(true);
    expect(seen).to.deep.equal([`started:${run.runId}`]);

    expect(await createRun(db, { ...run, conf: { n: 2 } }, plain.serialized, null)).to.equal('taken');
    expect((await getRun(db, run.runId))!.conf).to.deep.equal({ n: 1 });
    expect(await listTaskInstances(db, run.runId)).to.have.length(3);
    expect(await outboxOf(run.runId)).to.have.length(2);
  });

  it('leaves the run queued for the schedulers when they must weigh it', async () => {
    const limited = await insertDag(db, plainDag('limited', { maxActiveRuns: 2 }));
    const tasksLimited = await insertDag(db, plainDag('tasks_limited', { maxActiveTasks: 5 }));
    const pooledDag = dag('pooled');
    pooledDag.bash('a', { command: 'true', pool: 'gpu' });
    const pooled = await insertDag(db, pooledDag);
    const paused = await insertDag(db, plainDag('paused'));
    await setPaused(db, 'paused', true);
    for (const d of [limited, tasksLimited, pooled, paused]) {
      const run = newRun(d);
      expect(await createRun(db, run, d.serialized, null), d.dagId).to.equal('queued');
      expect((await getRun(db, run.runId))!.state, d.dagId).to.equal('queued');
      expect(await listTaskInstances(db, run.runId), d.dagId).to.have.length(0);
      expect(await outboxOf(run.runId), d.dagId).to.have.length(0);
    }
    expect(firstTasks(pooled.serialized)).to.equal(null);
    expect(
      firstTasks(plain.serialized)!
        .filter((t) => t.queued)
        .map((t) => t.taskId),
    ).to.deep.equal(['a', 'b']);
  });

  it('`trigger dag` sends the messages itself, through the Postgres queue or RabbitMQ', async () => {
    const conn = { databaseUrl: DATABASE_URL, schema: db.schema };
    const queued = async (runId: string) =>
      (
        await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM queue_messages WHERE payload->>'runId' = $1`,
          [runId],
        )
      ).rows[0]!.n;
    const onQueue = await triggerDag({ ...conn, dagId: 'plain' });
    expect(onQueue.state).to.equal('running');
    expect(await queued(onQueue.runId)).to.equal(2);
    expect(await outboxOf(onQueue.runId)).to.have.length(0);

    // No scheduler is told: the trigger's own connection to RabbitMQ sent both messages.
    const queuePrefix = `${uniqueName('start')}.`;
    let viaRabbit: RunSummary | undefined;
    const seen = await notified(
      async () =>
        (viaRabbit = await triggerDag({ ...conn, brokerUrl: BROKER_URL, queuePrefix, dagId: 'plain' })),
    );
    const rabbit = await RabbitBroker.connect({ url: BROKER_URL, prefix: queuePrefix });
    try {
      expect(viaRabbit!.state).to.equal('running');
      expect(await outboxOf(viaRabbit!.runId)).to.have.length(0);
      expect(seen).to.deep.equal([`started:${viaRabbit!.runId}`]);
      expect((await rabbit.depths(['worker']))[0]!.ready).to.equal(2);
    } finally {
      await rabbit.deleteQueues(['worker']);
      await rabbit.close();
    }
  });

  it('is run to its end by a worker, its first messages sent by a scheduler told of it', async () => {
    const broker = new PgQueueBroker(db, { pollMs: 100 });
    // No stale sweep within the test: only the scheduler's answer to the announcement can send them.
    const scheduler = new Scheduler({ db, broker, dagsFolder: null, outboxStaleMs: 600_000 });
    const folder = await tempDir('airtasks-start-');
    const worker = new Worker({ db, broker, queues: ['worker'], concurrency: 2, dagsFolder: folder });
    await scheduler.start();
    await worker.start();
    // A first task mapped over a list is queued as the scheduler's start would queue it, and expanded later.
    const mappedDag = dag('mapped_root');
    const each = mappedDag.bash('each', { command: 'echo {{ item }}', map: { over: [1, 2, 3] } });
    mappedDag.bash('after', { command: 'true', upstream: [each] });
    const mapped = await insertDag(db, mappedDag);
    try {
      for (const d of [plain, mapped]) {
        const run = newRun(d);
        expect(await createRun(db, run, d.serialized, null)).to.equal('started');
        const ended = await waitForRun(db, run.runId, 20_000);
        const tis = await listTaskInstances(db, run.runId);
        const errors = tis.map((t) => `${t.task_id}: ${t.state} ${t.error}`);
        expect(ended.state, errors.join('\n')).to.equal('success');
        expect(await outboxOf(run.runId)).to.have.length(0);
        if (d === mapped)
          expect(
            tis
              .filter((t) => t.task_id.startsWith('each['))
              .sort((a, b) => a.task_id.localeCompare(b.task_id))
              .map((t) => t.output),
          ).to.deep.equal(['1', '2', '3']);
      }
    } finally {
      await worker.stop();
      await scheduler.stop();
      await broker.close();
      await removeDir(folder);
    }
  });
});
