/**
 * The scheduler and a worker in this process, against each broker: runs of real bash and node tasks.
 */
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Broker } from '../../src/engine/broker/broker.js';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { dag } from '../../src/engine/dag/builder.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { readLogs } from '../../src/engine/store/logs.js';
import {
  getTaskInstance,
  listTaskInstances,
  listTries,
  type TaskInstanceRow,
} from '../../src/engine/store/task-instances.js';
import { claimTask } from '../../src/engine/store/claims.js';
import { registerWorker } from '../../src/engine/store/workers.js';
import { Worker } from '../../src/engine/worker/worker.js';
import {
  insertDag,
  insertDagFile,
  removeDir,
  sleep,
  startRun,
  tempDir,
  waitFor,
  waitForRun,
  writeDagFile,
} from '../helpers/engine.js';
import { BROKER_URL, freshDb, requireService, uniqueName } from '../helpers/env.js';

type TestDb = Awaited<ReturnType<typeof freshDb>>;

const HEARTBEAT_MS = 200;
const SWEEP_MS = 500;
const ZOMBIE_MS = 1500;

const PIPELINE = `
const d = dag('pipeline');
const greet = d.bash('greet', { command: 'echo "some noise"; echo "hello {{ conf.name }}"' });
d.node('shout', {
  upstream: greet,
  run: (ctx) => {
    const got = ctx.output(greet);
    ctx.log('read', got);
    return { got, upper: got.toUpperCase(), tries: ctx.tryNumber };
  },
});
export default d;
`;

function byTask(tis: TaskInstanceRow[]): Map<string, TaskInstanceRow> {
  return new Map(tis.map((t) => [t.task_id, t]));
}

for (const kind of ['postgres', 'rabbitmq'] as const) {
  describe(`scheduler + worker (${kind} broker)`, function () {
    this.timeout(30_000);
    let db: TestDb;
    let broker: Broker;
    let scheduler: Scheduler;
    let worker: Worker;
    let folder: string;
    const extraWorkers: Worker[] = [];

    function newWorker(queues: string[], concurrency = 4): Worker {
      return new Worker({
        db,
        broker,
        queues,
        concurrency,
        dagsFolder: folder,
        heartbeatMs: HEARTBEAT_MS,
        graceMs: 2000,
      });
    }

    before(async function () {
      await requireService(this, 'postgres');
      if (kind === 'rabbitmq') await requireService(this, 'rabbitmq');
      db = await freshDb();
      folder = await tempDir('airtasks-sw-');
      // As in a project made by `airtasks init`: DAG files are ES modules.
      await writeFile(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
      broker =
        kind === 'postgres'
          ? new PgQueueBroker(db, { pollMs: 200 })
          : await RabbitBroker.connect({ url: BROKER_URL, prefix: `${uniqueName('test')}.` });
      scheduler = new Scheduler({
        db,
        broker,
        dagsFolder: null,
        sweepIntervalMs: SWEEP_MS,
        zombieThresholdMs: ZOMBIE_MS,
      });
      worker = newWorker(['worker']);
      await scheduler.start();
      await worker.start();
    });

    after(async () => {
      for (const w of extraWorkers) await w.stop();
      await worker?.stop();
      await scheduler?.stop();
      if (broker instanceof RabbitBroker) await broker.deleteQueues(['worker', 'zombie', 'held']);
      await broker?.close();
      await db?.drop();
      await removeDir(folder);
    });

    it('runs a fan-out/fan-in DAG of bash tasks to success, in dependency order', async () => {
      const d = dag('fan');
      const start = d.bash('start', { command: 'echo started' });
      const mids = [1, 2, 3].map((i) =>
        d.bash(`mid${i}`, { command: `sleep 0.3; echo ${i}`, upstream: start }),
      );
      d.bash('join', {
        command: 'echo "{{ outputs.mid1 }}{{ outputs.mid2 }}{{ outputs.mid3 }}"',
        upstream: mids,
      });
      const stored = await insertDag(db, d);

      const runId = await startRun(db, stored);
      const run = await waitForRun(db, runId);
      expect(run.state).to.equal('success');
      expect(run.started_at).to.be.instanceOf(Date);
      expect(run.ended_at).to.be.instanceOf(Date);

      const tis = byTask(await listTaskInstances(db, runId));
      expect([...tis.keys()].sort()).to.deep.equal(['join', 'mid1', 'mid2', 'mid3', 'start']);
      for (const t of tis.values()) {
        expect(t, t.task_id).to.include({
          state: 'success',
          try_number: 1,
          exit_code: 0,
          worker_id: worker.id,
        });
      }
      const at = (id: string, f: 'started_at' | 'ended_at') => tis.get(id)![f]!.getTime();
      const midIds = ['mid1', 'mid2', 'mid3'];
      for (const m of midIds) {
        expect(at(m, 'started_at')).to.be.at.least(at('start', 'ended_at'));
        expect(at('join', 'started_at')).to.be.at.least(at(m, 'ended_at'));
        expect(tis.get(m)!.output).to.equal(m.slice(3));
      }
      // Fan-out: the three middle tasks ran side by side (concurrency 4).
      expect(Math.max(...midIds.map((m) => at(m, 'started_at')))).to.be.below(
        Math.min(...midIds.map((m) => at(m, 'ended_at'))),
      );
      // Fan-in: the join read every upstream output.
      expect(tis.get('join')!.output).to.equal('123');
      const logs = await readLogs(db, runId, 'join');
      expect(logs.filter((l) => l.stream === 'stdout').map((l) => l.line)).to.deep.equal(['123']);
      expect((await listTries(db, runId)).map((t) => [t.task_id, t.try_number, t.state])).to.deep.equal([
        ['join', 1, 'success'],
        ['mid1', 1, 'success'],
        ['mid2', 1, 'success'],
        ['mid3', 1, 'success'],
        ['start', 1, 'success'],
      ]);
    });

    it('retries a failing task once, then fails the run and marks its downstream upstream_failed', async () => {
      const d = dag('retrying');
      const fail = d.bash('fail', {
        command: 'echo "try {{ try_number }}"; exit 3',
        retries: 1,
        retryDelay: '100ms',
      });
      d.bash('after', { command: 'echo never', upstream: fail });
      d.bash('independent', { command: 'echo fine' });
      const stored = await insertDag(db, d);

      const runId = await startRun(db, stored);
      const run = await waitForRun(db, runId);
      expect(run.state).to.equal('failed');

      const tis = byTask(await listTaskInstances(db, runId));
      expect(tis.get('fail')).to.include({
        state: 'failed',
        try_number: 2,
        failed_tries: 2,
        lost_tries: 0,
        exit_code: 3,
      });
      expect(tis.get('fail')!.error).to.include('exited with code 3');
      expect(tis.get('after')).to.include({ state: 'upstream_failed', try_number: 0 });
      expect(tis.get('independent')).to.include({ state: 'success' });

      const tries = await listTries(db, runId, 'fail');
      expect(tries.map((t) => [t.try_number, t.state, t.exit_code])).to.deep.equal([
        [1, 'failed', 3],
        [2, 'failed', 3],
      ]);
      // The retry waited for its delay.
      expect(tries[1]!.started_at!.getTime() - tries[0]!.ended_at!.getTime()).to.be.at.least(100);
      expect(await listTries(db, runId, 'after')).to.deep.equal([]);
      for (const n of [1, 2]) {
        const lines = (await readLogs(db, runId, 'fail', { tryNumber: n })).map((l) => l.line);
        expect(lines).to.include(`try ${n}`);
      }
    });

    it('templates conf into a bash command; its last stdout line reaches a node task via ctx.output', async () => {
      await writeDagFile(folder, 'pipeline.ts', PIPELINE);
      const stored = (await insertDagFile(db, folder, 'pipeline.ts')).get('pipeline')!;

      const runId = await startRun(db, stored, { name: 'world' });
      const run = await waitForRun(db, runId);
      const tis = byTask(await listTaskInstances(db, runId));
      expect(run.state, `shout: ${tis.get('shout')?.error}`).to.equal('success');
      expect(tis.get('greet')!.output).to.equal('hello world');
      expect(tis.get('shout')!.output).to.deep.equal({ got: 'hello world', upper: 'HELLO WORLD', tries: 1 });
      const greetLogs = (await readLogs(db, runId, 'greet'))
        .filter((l) => l.stream === 'stdout')
        .map((l) => l.line);
      expect(greetLogs).to.deep.equal(['some noise', 'hello world']);
      const shoutLogs = (await readLogs(db, runId, 'shout')).map((l) => l.line);
      expect(shoutLogs).to.include('read hello world');
    });

    it('gives back a prefetched message that waits behind a long task: a free worker runs it', async () => {
      // One slot: it holds the long task, and the short one's message waits in hand (prefetch 2).
      const busy = new Worker({
        db,
        broker,
        queues: ['held'],
        concurrency: 1,
        dagsFolder: folder,
        heartbeatMs: HEARTBEAT_MS,
        graceMs: 2000,
        prefetchHoldMs: 300,
      });
      extraWorkers.push(busy);
      await busy.start();
      const d = dag('held');
      d.bash('long', { command: 'sleep 5', queue: 'held', priorityWeight: 10 });
      d.bash('short', { command: 'echo short', queue: 'held' });
      const runId = await startRun(db, await insertDag(db, d));
      await waitFor(
        async () => (await getTaskInstance(db, runId, 'long'))?.worker_id === busy.id,
        'the long task to run on the one-slot worker',
      );
      const free = newWorker(['held']);
      extraWorkers.push(free);
      await free.start();
      const run = await waitForRun(db, runId, 20_000);
      expect(run.state).to.equal('success');
      const long = (await getTaskInstance(db, runId, 'long'))!;
      const short = (await getTaskInstance(db, runId, 'short'))!;
      expect(short.worker_id).to.equal(free.id);
      expect(short.ended_at!.getTime()).to.be.lessThan(long.ended_at!.getTime());
    });

    it('runs a task once even when its message is delivered again', async () => {
      const counter = path.join(folder, `count-${randomUUID()}.txt`);
      const d = dag('once');
      d.bash('count', { command: 'echo ran >> {{ conf.file | shquote }}; sleep 0.5; echo counted' });
      const stored = await insertDag(db, d);
      const runId = await startRun(db, stored, { file: counter });
      const message = { queue: 'worker', priority: 1, body: { runId, taskId: 'count', tryNumber: 1 } };

      // While the try runs, the same message arrives twice more (a broker redelivery, a republished outbox row).
      await waitFor(
        async () => (await getTaskInstance(db, runId, 'count'))?.state === 'running',
        'the task to run',
      );
      await broker.publish([message, message]);
      const run = await waitForRun(db, runId);
      expect(run.state).to.equal('success');

      // And once more after the task finished.
      await broker.publish([message]);
      await waitFor(
        async () => {
          const [depth] = await broker.depths(['worker']);
          return depth!.ready === 0 && (depth!.unacked ?? 0) === 0;
        },
        'the duplicates to be consumed',
        5000,
      );
      await sleep(500);

      expect((await readFile(counter, 'utf8')).trim().split('\n')).to.deep.equal(['ran']);
      expect(await getTaskInstance(db, runId, 'count')).to.include({
        state: 'success',
        try_number: 1,
        output: 'counted',
      });
      expect(await listTries(db, runId, 'count')).to.have.length(1);
    });

    it('re-queues the try of a worker that stopped heartbeating; the run still succeeds', async () => {
      const d = dag('zombie');
      d.bash('work', { command: 'echo "try {{ try_number }}"', queue: 'zombie' });
      const stored = await insertDag(db, d);
      const runId = await startRun(db, stored);
      const m = { runId, taskId: 'work', tryNumber: 1 };

      // Nobody consumes queue 'zombie' yet: a worker that is about to die claims the try itself.
      await waitFor(
        async () => (await getTaskInstance(db, runId, 'work'))?.state === 'queued',
        'the task to queue',
      );
      const deadId = `dead-${randomUUID().slice(0, 8)}`;
      await registerWorker(db, {
        workerId: deadId,
        hostname: 'gone',
        pid: 1,
        queues: ['zombie'],
        concurrency: 1,
      });
      expect(await claimTask(db, m, deadId, randomUUID())).to.not.equal(null);

      // Its heartbeat is fresh: not a zombie yet.
      await scheduler.reapZombies();
      expect(await getTaskInstance(db, runId, 'work')).to.include({
        state: 'running',
        try_number: 1,
        worker_id: deadId,
      });

      await db.query(`UPDATE workers SET heartbeat_at = now() - interval '1 minute' WHERE worker_id = $1`, [
        deadId,
      ]);
      await scheduler.reapZombies();
      const lost = (await getTaskInstance(db, runId, 'work'))!;
      expect(lost.state).to.be.oneOf(['up_for_retry', 'queued']);
      expect(lost).to.include({ lost_tries: 1, failed_tries: 0 });
      const first = (await listTries(db, runId, 'work'))[0]!;
      expect(first).to.include({ try_number: 1, state: 'failed', worker_id: deadId });
      expect(first.error).to.match(new RegExp(`worker ${deadId} lost`));

      // The next try is queued at once; a live worker takes it (and ignores the stale message of try 1).
      await waitFor(
        async () => (await getTaskInstance(db, runId, 'work'))?.try_number === 2,
        'try 2 to be queued',
      );
      const live = newWorker(['zombie'], 1);
      extraWorkers.push(live);
      await live.start();
      const run = await waitForRun(db, runId);
      expect(run.state).to.equal('success');
      expect(await getTaskInstance(db, runId, 'work')).to.include({
        state: 'success',
        try_number: 2,
        worker_id: live.id,
        output: 'try 2',
        lost_tries: 1,
        failed_tries: 0,
      });
      expect(
        (await listTries(db, runId, 'work')).map((t) => [t.try_number, t.state, t.worker_id]),
      ).to.deep.equal([
        [1, 'failed', deadId],
        [2, 'success', live.id],
      ]);
    });
  });
}
