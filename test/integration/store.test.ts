import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { dag } from '../../src/engine/dag/builder.js';
import type { Listener } from '../../src/engine/store/db.js';
import { createRuns, getRun } from '../../src/engine/store/runs.js';
import { markRunning } from '../../src/engine/store/run-passes.js';
import { createTaskInstances, getTaskInstance, listTries } from '../../src/engine/store/task-instances.js';
import { finishTry, type TryResult } from '../../src/engine/store/results.js';
import { claimTask } from '../../src/engine/store/claims.js';
import { queueTasks } from '../../src/engine/store/queueing.js';
import type { TaskMessage } from '../../src/core/states.js';
import { insertDag, sleep, type StoredDag } from '../helpers/engine.js';
import { freshDb, requireService, uniqueName } from '../helpers/env.js';

type TestDb = Awaited<ReturnType<typeof freshDb>>;

const SUCCESS: TryResult = {
  state: 'success',
  exitCode: 0,
  output: 'done',
  error: null,
  retryInMs: null,
  countsAsFailure: false,
};

describe('store semantics', function () {
  let db: TestDb;
  let stored: StoredDag;

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    const d = dag('store_test');
    const a = d.bash('a', { command: 'echo a' });
    d.bash('b', { command: 'echo b', upstream: a });
    stored = await insertDag(db, d);
  });

  after(async () => {
    await db?.drop();
  });

  /** A running run with its task instances created, as the scheduler leaves it. */
  async function runningRun(): Promise<string> {
    const runId = uniqueName('run');
    const { created } = await createRuns(
      db,
      [{ runId, dagId: stored.dagId, dagHash: stored.hash, conf: {} }],
      db.channel('events'),
    );
    expect(created).to.deep.equal([runId]);
    await createTaskInstances(db, runId, stored.serialized.tasks);
    await markRunning(db, [runId]);
    return runId;
  }

  async function outboxCount(runId: string): Promise<number> {
    return (await db.query(`SELECT 1 FROM outbox WHERE payload->>'runId' = $1`, [runId])).rowCount ?? 0;
  }

  describe('claimTask', () => {
    it('claims a queued try once; a second claim and a claim for another try get null', async () => {
      const runId = await runningRun();
      const [row] = await queueTasks(db, [{ runId, taskId: 'a', from: 'none' }]);
      const m: TaskMessage = row!.payload;
      expect(m).to.deep.equal({ runId, taskId: 'a', tryNumber: 1 });

      // A message for a try that is not the current one is stale, even while the task is queued.
      expect(await claimTask(db, { ...m, tryNumber: 2 }, 'w-wrong', randomUUID())).to.equal(null);
      expect(await claimTask(db, { ...m, tryNumber: 0 }, 'w-wrong', randomUUID())).to.equal(null);
      expect((await getTaskInstance(db, runId, 'a'))!.state).to.equal('queued');

      const token = randomUUID();
      const claim = await claimTask(db, m, 'w1', token);
      expect(claim).to.not.equal(null);
      expect(claim).to.include({ dagId: stored.dagId, dagHash: stored.hash, failedTries: 0, lostTries: 0 });
      expect(claim!.logicalDate).to.be.instanceOf(Date);

      // The duplicate message: the claim is taken, and the first claim's token and worker stay.
      expect(await claimTask(db, m, 'w2', randomUUID())).to.equal(null);
      const ti = (await getTaskInstance(db, runId, 'a'))!;
      expect(ti).to.include({ state: 'running', worker_id: 'w1', claim_token: token, try_number: 1 });
    });

    it('does not claim a task whose run is not running', async () => {
      const runId = await runningRun();
      const [row] = await queueTasks(db, [{ runId, taskId: 'a', from: 'none' }]);
      await db.query(`UPDATE dag_runs SET state = 'cancelled' WHERE run_id = $1`, [runId]);
      expect(await claimTask(db, row!.payload, 'w1', randomUUID())).to.equal(null);
      expect((await getTaskInstance(db, runId, 'a'))!.state).to.equal('queued');
    });
  });

  describe('finishTry', () => {
    it('is fenced by the claim token: a wrong token changes nothing and returns false', async () => {
      const runId = await runningRun();
      const [row] = await queueTasks(db, [{ runId, taskId: 'a', from: 'none' }]);
      const m = row!.payload;
      const token = randomUUID();
      expect(await claimTask(db, m, 'w1', token)).to.not.equal(null);
      const before = (await getTaskInstance(db, runId, 'a'))!;

      expect(await finishTry(db, m, randomUUID(), SUCCESS, db.channel('events'))).to.equal(false);
      const after = (await getTaskInstance(db, runId, 'a'))!;
      expect(after).to.deep.equal(before);
      expect(after.state).to.equal('running');
      expect(await listTries(db, runId, 'a')).to.deep.equal([]);

      // The right token for the wrong try number is fenced out too.
      expect(await finishTry(db, { ...m, tryNumber: 2 }, token, SUCCESS, db.channel('events'))).to.equal(
        false,
      );
      expect((await getTaskInstance(db, runId, 'a'))!.state).to.equal('running');

      expect(await finishTry(db, m, token, SUCCESS, db.channel('events'))).to.equal(true);
      const done = (await getTaskInstance(db, runId, 'a'))!;
      expect(done).to.include({ state: 'success', exit_code: 0, output: 'done', failed_tries: 0 });
      const tries = await listTries(db, runId, 'a');
      expect(tries).to.have.length(1);
      expect(tries[0]).to.include({ try_number: 1, state: 'success', worker_id: 'w1', exit_code: 0 });

      // A late second report with the same token: the try is over, nothing changes.
      const failed: TryResult = {
        ...SUCCESS,
        state: 'failed',
        output: null,
        error: 'late',
        countsAsFailure: true,
      };
      expect(await finishTry(db, m, token, failed, db.channel('events'))).to.equal(false);
      expect((await getTaskInstance(db, runId, 'a'))!).to.include({
        state: 'success',
        failed_tries: 0,
        error: null,
      });
      expect(await listTries(db, runId, 'a')).to.have.length(1);
    });

    it('notifies the schedulers only when it records a result', async () => {
      const runId = await runningRun();
      const [row] = await queueTasks(db, [{ runId, taskId: 'a', from: 'none' }]);
      const token = randomUUID();
      await claimTask(db, row!.payload, 'w1', token);
      const seen: string[] = [];
      let listener: Listener | undefined;
      try {
        listener = db.listen([db.channel('events')], (_ch, payload) => seen.push(payload));
        await listener.ready;
        await finishTry(db, row!.payload, randomUUID(), SUCCESS, db.channel('events'));
        await finishTry(db, row!.payload, token, SUCCESS, db.channel('events'));
        await sleep(200);
      } finally {
        await listener?.close();
      }
      expect(seen).to.deep.equal([runId]);
    });
  });

  describe('queueTasks', () => {
    it('moves only tasks in the expected state and writes one outbox row per task moved', async () => {
      const runId = await runningRun();

      // 'b' is in state none, not up_for_retry: nothing moves, no message.
      expect(await queueTasks(db, [{ runId, taskId: 'b', from: 'up_for_retry' }])).to.deep.equal([]);
      expect(await outboxCount(runId)).to.equal(0);
      expect((await getTaskInstance(db, runId, 'b'))!).to.include({ state: 'none', try_number: 0 });

      const rows = await queueTasks(db, [
        { runId, taskId: 'a', from: 'none' },
        { runId, taskId: 'b', from: 'up_for_retry' },
        { runId, taskId: 'missing', from: 'none' },
      ]);
      expect(rows).to.have.length(1);
      expect(rows[0]).to.include({ queue: 'worker', priority: 1 });
      expect(rows[0]!.payload).to.deep.equal({ runId, taskId: 'a', tryNumber: 1 });
      const outbox = await db.query<{ id: number; queue: string; payload: TaskMessage }>(
        `SELECT id, queue, payload FROM outbox WHERE payload->>'runId' = $1 ORDER BY id`,
        [runId],
      );
      expect(outbox.rows).to.deep.equal([{ id: rows[0]!.id, queue: 'worker', payload: rows[0]!.payload }]);
      expect((await getTaskInstance(db, runId, 'a'))!).to.include({ state: 'queued', try_number: 1 });

      // Queuing 'a' from none again (a duplicate decision): it is queued already, nothing happens.
      expect(await queueTasks(db, [{ runId, taskId: 'a', from: 'none' }])).to.deep.equal([]);
      expect(await outboxCount(runId)).to.equal(1);
      expect((await getTaskInstance(db, runId, 'a'))!.try_number).to.equal(1);
    });

    it('queues a retry as the next try, clearing the previous claim', async () => {
      const runId = await runningRun();
      const [row] = await queueTasks(db, [{ runId, taskId: 'a', from: 'none' }]);
      const token = randomUUID();
      await claimTask(db, row!.payload, 'w1', token);
      const retry: TryResult = {
        state: 'up_for_retry',
        exitCode: 1,
        output: null,
        error: 'exit 1',
        retryInMs: 250,
        countsAsFailure: true,
      };
      expect(await finishTry(db, row!.payload, token, retry, db.channel('events'))).to.equal(true);
      // The delay is added to the database's clock, the one ended_at comes from: no worker clock skew.
      const failed = (await getTaskInstance(db, runId, 'a'))!;
      expect(failed.next_retry_at!.getTime() - failed.ended_at!.getTime()).to.equal(250);
      expect(await queueTasks(db, [{ runId, taskId: 'a', from: 'none' }])).to.deep.equal([]);

      const [again] = await queueTasks(db, [{ runId, taskId: 'a', from: 'up_for_retry' }]);
      expect(again!.payload).to.deep.equal({ runId, taskId: 'a', tryNumber: 2 });
      expect((await getTaskInstance(db, runId, 'a'))!).to.include({
        state: 'queued',
        try_number: 2,
        failed_tries: 1,
        claim_token: null,
        worker_id: null,
        error: null,
      });
      // The old try's message is stale now; the new one claims.
      expect(await claimTask(db, row!.payload, 'w2', randomUUID())).to.equal(null);
      expect(await claimTask(db, again!.payload, 'w2', randomUUID())).to.include({ failedTries: 1 });
    });
  });

  describe('createRuns', () => {
    it('refuses a duplicate run id and wakes the schedulers only once', async () => {
      const runId = uniqueName('run');
      const seen: string[] = [];
      const listener = db.listen([db.channel('events')], (_ch, payload) => seen.push(payload));
      try {
        await listener.ready;
        const first = { runId, dagId: stored.dagId, dagHash: stored.hash, conf: { n: 1 } };
        expect((await createRuns(db, [first], db.channel('events'))).created).to.deep.equal([runId]);
        const again = await createRuns(db, [{ ...first, conf: { n: 2 } }], db.channel('events'));
        expect(again.created).to.deep.equal([]);
        await sleep(200);
      } finally {
        await listener.close();
      }
      expect(seen).to.deep.equal([runId]);
      const runs = await db.query(`SELECT conf, state FROM dag_runs WHERE run_id = $1`, [runId]);
      expect(runs.rows).to.deep.equal([{ conf: { n: 1 }, state: 'queued' }]);
      expect((await getRun(db, runId))!.dag_hash).to.equal(stored.hash);
    });

    it('refuses a run of a DAG version that is not stored', async () => {
      const r = { runId: uniqueName('run'), dagId: stored.dagId, dagHash: 'f'.repeat(32), conf: {} };
      let error: unknown;
      try {
        await createRuns(db, [r], db.channel('events'));
      } catch (err) {
        error = err;
      }
      expect(error, 'createRuns should throw').to.be.instanceOf(Error);
      expect(await getRun(db, r.runId)).to.equal(undefined);
    });
  });
});
