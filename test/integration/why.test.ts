/**
 * `airtasks why` through the real scheduler and workers: each thing that can hold a task is made to hold
 * one, and the service must name it (and who holds the slot, the run slot or the GPU).
 */
import { expect } from 'chai';
import { AirtasksError, ExitCode } from '../../src/core/errors.js';
import { dag } from '../../src/engine/dag/builder.js';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { setPaused } from '../../src/engine/store/dags.js';
import { GpuAllocator } from '../../src/engine/worker/gpus.js';
import { Worker } from '../../src/engine/worker/worker.js';
import { setPool } from '../../src/services/pools.js';
import { explainWait, type TaskWait, type WhyResult } from '../../src/services/why.js';
import { insertDag, startEngine, startRun, waitFor, type EngineHarness } from '../helpers/engine.js';
import {
  BROKER_URL,
  DATABASE_URL,
  deleteTestQueues,
  freshDb,
  requireService,
  uniqueName,
} from '../helpers/env.js';

describe('why a task waits', function () {
  this.timeout(60_000);
  let engine: EngineHarness;
  let db: EngineHarness['db'];
  let conn: { databaseUrl: string; schema: string };
  const extra: Array<{ worker: Worker; broker: PgQueueBroker }> = [];

  before(async function () {
    await requireService(this, 'postgres');
    engine = await startEngine({ worker: { concurrency: 8, graceMs: 200 } });
    db = engine.db;
    conn = { databaseUrl: DATABASE_URL, schema: db.schema };
  });

  after(async () => {
    for (const x of extra) {
      await x.worker.stop();
      await x.broker.close();
    }
    await engine?.stop();
  });

  /** Another worker of the harness's schema (own broker connection), stopped after the suite. */
  async function addWorker(queues: string[], concurrency: number, gpus?: GpuAllocator) {
    const broker = new PgQueueBroker(db, { pollMs: 100 });
    const worker = new Worker({
      db,
      broker,
      queues,
      concurrency,
      gpus,
      dagsFolder: engine.folder,
      heartbeatMs: 300,
      graceMs: 200,
    });
    await worker.start();
    extra.push({ worker, broker });
    return { worker, broker };
  }

  const why = (runId: string, taskId?: string): Promise<WhyResult> => explainWait({ ...conn, runId, taskId });

  /** Polls `why` until the task's reason is of the kind; returns it. */
  async function reasonOf(runId: string, taskId: string, kind: string): Promise<TaskWait> {
    let last: TaskWait | undefined;
    return waitFor(
      async () => {
        last = (await why(runId)).tasks.find((t) => t.taskId === taskId);
        return last?.reason.kind === kind ? last : undefined;
      },
      `${taskId} to wait for ${kind}`,
      20_000,
      150,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last: ${last?.text}`, { cause: err });
    });
  }

  it('names the upstream tasks not done, with the trigger rule, and says where a task runs', async () => {
    const d = dag('why_upstream');
    const a = d.bash('a', { command: 'sleep 30' });
    const b = d.bash('b', { command: 'true' });
    d.bash('c', { command: 'true', upstream: [a, b], triggerRule: 'all_done' });
    const runId = await startRun(db, await insertDag(db, d));
    const ra = await reasonOf(runId, 'a', 'running');
    await waitFor(async () => (await why(runId, 'b')).tasks[0]!.state === 'success', 'b to succeed');
    expect((await why(runId, 'c')).tasks[0]!.text).to.equal('waits for upstream a (running) [all_done]');
    expect(ra.text).to.match(new RegExp(`^running on worker ${engine.worker.id} \\(.+\\) since \\d{4}-`));
    // A finished task is told only when asked for by name.
    expect((await why(runId)).tasks.map((t) => t.taskId)).to.deep.equal(['a', 'c']);
    expect((await why(runId, 'b')).tasks[0]!.text).to.equal('finished: success');
  });

  it('says a retry waits until its time', async () => {
    const d = dag('why_retry');
    d.bash('flaky', { command: 'exit 3', retries: 2, retryDelay: '1h' });
    const runId = await startRun(db, await insertDag(db, d));
    const t = await reasonOf(runId, 'flaky', 'retry_wait');
    expect(t.state).to.equal('up_for_retry');
    expect(t.text).to.match(/^try 2 waits until \d{4}-.+Z \(in 3\d{3}s\) before it retries$/);
  });

  it('names the tries holding a full pool, and a pool that does not exist or is too small', async () => {
    await setPool({ ...conn, name: 'why_pool', slots: 2 });
    const d = dag('why_pools');
    d.bash('big', { command: 'sleep 30', pool: 'why_pool', poolSlots: 2 });
    const runId = await startRun(db, await insertDag(db, d));
    await reasonOf(runId, 'big', 'running');
    const d2 = dag('why_pools2');
    d2.bash('small', { command: 'true', pool: 'why_pool' });
    d2.bash('nopool', { command: 'true', pool: 'why_missing_pool' });
    d2.bash('huge', { command: 'true', pool: 'why_pool', poolSlots: 3 });
    const run2 = await startRun(db, await insertDag(db, d2));
    expect((await reasonOf(run2, 'small', 'pool_full')).text).to.equal(
      `pool why_pool is full (0 of 2 slots free, needs 1): held by ${runId}/big#1 (2, running)`,
    );
    expect((await reasonOf(run2, 'nopool', 'pool_missing')).text).to.equal(
      'pool why_missing_pool does not exist: create it (airtasks pools set why_missing_pool <slots>)',
    );
    expect((await reasonOf(run2, 'huge', 'pool_too_small')).text).to.match(
      /^needs 3 slots of pool why_pool, which has 2/,
    );
  });

  it("names the tasks holding the DAG's maxActiveTasks", async () => {
    const d = dag('why_tasks', { maxActiveTasks: 1 });
    d.bash('one', { command: 'sleep 30' });
    d.bash('two', { command: 'sleep 30' });
    const runId = await startRun(db, await insertDag(db, d));
    const waiting = await waitFor(async () => {
      const r = await why(runId);
      // Once the holder runs (it is queued for a moment first).
      return r.tasks.find((t) => t.reason.kind === 'max_active_tasks' && t.text.endsWith('(running)'));
    }, 'a task held by maxActiveTasks');
    const other = waiting.taskId === 'one' ? 'two' : 'one';
    expect(waiting.text).to.equal(
      `DAG why_tasks has 1 of 1 tasks queued or running (maxActiveTasks): ${runId}/${other}#1 (running)`,
    );
  });

  it("names the runs holding the DAG's maxActiveRuns, and says a queued run of a paused DAG waits for it", async () => {
    const d = dag('why_runs', { maxActiveRuns: 1 });
    d.bash('long', { command: 'sleep 30' });
    const stored = await insertDag(db, d);
    const first = await startRun(db, stored);
    await reasonOf(first, 'long', 'running');
    const second = await startRun(db, stored);
    expect((await reasonOf(second, 'long', 'max_active_runs')).text).to.equal(
      `DAG why_runs runs 1 of 1 runs at once (maxActiveRuns): ${first}`,
    );
    const p = dag('why_paused');
    p.bash('t', { command: 'true' });
    const paused = await insertDag(db, p);
    await setPaused(db, 'why_paused', true);
    const r = await startRun(db, paused);
    const t = await reasonOf(r, 't', 'dag_paused');
    expect(t.text).to.equal(
      'DAG why_paused is paused: its queued runs do not start (airtasks dags unpause why_paused)',
    );
    expect((await why(r)).runState).to.equal('queued');
  });

  it('says no worker consumes the queue, every worker of it is busy, or its message waits in the broker', async () => {
    const d = dag('why_queues');
    d.bash('orphan', { command: 'true', queue: 'why_nobody' });
    const r1 = await startRun(db, await insertDag(db, d));
    expect((await reasonOf(r1, 'orphan', 'no_worker')).text).to.equal(
      'queued on why_nobody, and no live worker consumes that queue: start one (airtasks worker -q why_nobody)',
    );

    const narrow = await addWorker(['why_narrow'], 1);
    const n = dag('why_busy');
    n.bash('first', { command: 'sleep 30', queue: 'why_narrow' });
    n.bash('second', { command: 'sleep 30', queue: 'why_narrow' });
    const r2 = await startRun(db, await insertDag(db, n));
    const busy = await waitFor(async () => {
      return (await why(r2)).tasks.find((t) => t.reason.kind === 'workers_busy');
    }, 'a task behind a busy worker');
    expect(busy.text).to.equal(
      `queued on why_narrow: every worker of the queue is busy: ${narrow.worker.id} 1/1`,
    );

    // A worker that heartbeats but takes nothing (its broker connection gone): the message stays there.
    const stalled = await addWorker(['why_stalled'], 2);
    await stalled.broker.close();
    const s = dag('why_stalled');
    s.bash('stuck', { command: 'true', queue: 'why_stalled' });
    const r3 = await startRun(db, await insertDag(db, s));
    expect((await reasonOf(r3, 'stuck', 'in_broker')).text).to.match(
      /^queued on why_stalled since \d{4}-.+Z: its message waits in the broker \(1 ready, 0 unacked\) for one of 1 worker\(s\)$/,
    );
  });

  it('names the tasks holding the GPUs a claimed task waits for', async () => {
    const { worker } = await addWorker(['why_gpu'], 2, new GpuAllocator(['0']));
    const d = dag('why_gpus');
    d.bash('g1', { command: 'sleep 30', gpus: 1, queue: 'why_gpu' });
    d.bash('g2', { command: 'sleep 30', gpus: 1, queue: 'why_gpu' });
    const runId = await startRun(db, await insertDag(db, d));
    const waiting = await waitFor(
      async () => (await why(runId)).tasks.find((t) => t.reason.kind === 'gpus_held'),
      'a task waiting for a GPU',
    );
    const holder = waiting.taskId === 'g1' ? 'g2' : 'g1';
    expect(waiting.text).to.equal(
      `claimed by worker ${worker.id}, waits for GPUs (1): held by ${runId}/${holder}#1 (GPU 0)`,
    );
    expect((await why(runId, holder)).tasks[0]!.text).to.match(/ with GPU 0$/);
  });

  it('refuses an unknown run or task with the not-found exit code', async () => {
    for (const p of [why('why_no_such_run'), why((await why_anyRun())!, 'no_such_task')]) {
      const err = await p.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(AirtasksError);
      expect((err as AirtasksError).exitCode).to.equal(ExitCode.NOT_FOUND);
    }
  });

  async function why_anyRun(): Promise<string | undefined> {
    return (await db.query<{ run_id: string }>(`SELECT run_id FROM dag_runs LIMIT 1`)).rows[0]?.run_id;
  }
});

describe('why a task waits, with RabbitMQ', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof freshDb>>;
  let broker: RabbitBroker;
  let scheduler: Scheduler;
  const prefix = `${uniqueName('why')}.`;
  let conn: { databaseUrl: string; schema: string; brokerUrl: string; queuePrefix: string };

  before(async function () {
    await requireService(this, 'postgres');
    await requireService(this, 'rabbitmq');
    db = await freshDb();
    broker = await RabbitBroker.connect({ url: BROKER_URL, prefix });
    scheduler = new Scheduler({ db, broker, dagsFolder: null, sweepIntervalMs: 500 });
    await scheduler.start();
    conn = { databaseUrl: DATABASE_URL, schema: db.schema, brokerUrl: BROKER_URL, queuePrefix: prefix };
  });

  after(async () => {
    await scheduler?.stop();
    await broker?.close();
    await deleteTestQueues(prefix, ['why_rq', 'why_rq2']);
    await db?.drop();
  });

  const reason = (runId: string, kind: string) =>
    waitFor(async () => {
      const t = (await explainWait({ ...conn, runId })).tasks[0];
      return t?.reason.kind === kind ? t : undefined;
    }, `a task to wait for ${kind}`);

  it("counts the broker's consumers, and says a message the broker did not take waits in the outbox", async () => {
    const d = dag('why_rabbit');
    d.bash('t', { command: 'true', queue: 'why_rq' });
    const r1 = await startRun(db, await insertDag(db, d));
    expect((await reason(r1, 'no_worker')).text).to.match(/^queued on why_rq, and no live worker consumes/);

    // The scheduler's broker connection gone: the task is queued, its message kept in the outbox.
    await broker.close();
    const o = dag('why_outbox');
    o.bash('t', { command: 'true', queue: 'why_rq2' });
    const r2 = await startRun(db, await insertDag(db, o));
    expect((await reason(r2, 'outbox')).text).to.match(
      /^queued on why_rq2 since \d{4}-.+Z, its message not yet published to the broker \(outbox\)$/,
    );
  });
});
