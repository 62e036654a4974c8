/**
 * Run control through a real scheduler and worker, on each broker: cancelling runs, clearing tasks,
 * run timeouts, task timeouts that kill a whole process tree, and branching.
 */
import { randomUUID } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import type { Broker } from '../../src/engine/broker/broker.js';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { dag } from '../../src/engine/dag/builder.js';
import { AirtasksError, ExitCode } from '../../src/core/errors.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { getRun } from '../../src/engine/store/runs.js';
import {
  getTaskInstance,
  listTaskInstances,
  listTries,
  type TaskInstanceRow,
} from '../../src/engine/store/task-instances.js';
import { finishTry } from '../../src/engine/store/results.js';
import { Worker } from '../../src/engine/worker/worker.js';
import { cancelRun, clearTask, CANCEL_REASON } from '../../src/services/run-control.js';
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
import { BROKER_URL, DATABASE_URL, freshDb, requireService, uniqueName } from '../helpers/env.js';
import { alive, pidsIn } from '../helpers/processes.js';

type TestDb = Awaited<ReturnType<typeof freshDb>>;

function byTask(tis: TaskInstanceRow[]): Map<string, TaskInstanceRow> {
  return new Map(tis.map((t) => [t.task_id, t]));
}

/**
 * A bash command that leaves a process tree: a background `sleep 30`, a subshell whose grandchild appends
 * to `grow` every 0.1 s, and a foreground `sleep 30`; every pid goes to `pids`.
 */
function treeCommand(pids: string, grow: string) {
  const q = (s: string) => `'${s}'`;
  return [
    `echo $$ >> ${q(pids)}`,
    `sleep 30 & echo $! >> ${q(pids)}`,
    `( bash -c 'while true; do echo x >> ${grow}; sleep 0.1; done' & echo $! >> ${q(pids)}; wait ) &`,
    `echo $! >> ${q(pids)}`,
    `sleep 30`,
  ].join('\n');
}

for (const kind of ['postgres', 'rabbitmq'] as const) {
  describe(`run control (${kind} broker)`, function () {
    this.timeout(40_000);
    let db: TestDb;
    let broker: Broker;
    let schedulers: Scheduler[] = [];
    let worker: Worker;
    let folder: string;
    const extraWorkers: Worker[] = [];
    const conn = () => ({ databaseUrl: DATABASE_URL, schema: db.schema });

    before(async function () {
      await requireService(this, 'postgres');
      if (kind === 'rabbitmq') await requireService(this, 'rabbitmq');
      db = await freshDb();
      folder = await tempDir('airtasks-rc-');
      await writeFile(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
      broker =
        kind === 'postgres'
          ? new PgQueueBroker(db, { pollMs: 200 })
          : await RabbitBroker.connect({ url: BROKER_URL, prefix: `${uniqueName('test')}.` });
      // Two schedulers, as in an HA deployment: cancels, clears and branch decisions must not be applied twice.
      schedulers = [1, 2].map(
        () =>
          new Scheduler({
            db,
            broker,
            dagsFolder: null,
            sweepIntervalMs: 500,
            zombieThresholdMs: 600_000,
            runTimeoutCheckMs: 200,
          }),
      );
      // Its heartbeat is a minute apart: a cancelled task that stops within seconds was told by NOTIFY.
      worker = new Worker({
        db,
        broker,
        queues: ['worker'],
        concurrency: 4,
        dagsFolder: folder,
        heartbeatMs: 60_000,
        graceMs: 2000,
      });
      for (const s of schedulers) await s.start();
      await worker.start();
    });

    after(async () => {
      for (const w of extraWorkers) await w.stop();
      await worker?.stop();
      for (const s of schedulers) await s.stop();
      if (broker instanceof RabbitBroker) await broker.deleteQueues(['worker', 'nowhere']);
      await broker?.close();
      await db?.drop();
      await removeDir(folder);
    });

    it('cancel: stops the running task tree at once, never starts the others, and fences its late result', async () => {
      const pids = path.join(folder, `pids-${randomUUID()}`);
      const grow = path.join(folder, `grow-${randomUUID()}`);
      const d = dag('cancel_me');
      const long = d.bash('long', { command: treeCommand(pids, grow) });
      d.bash('after', { command: 'echo never', upstream: long });
      d.bash('elsewhere', { command: 'echo never', queue: 'nowhere' }); // queued, no worker consumes it
      const stored = await insertDag(db, d);
      const runId = await startRun(db, stored);
      await waitFor(async () => (await pidsIn(pids).catch(() => [])).length >= 4, 'the task tree to start');
      await waitFor(
        async () => (await getTaskInstance(db, runId, 'elsewhere'))?.state === 'queued',
        'elsewhere to queue',
      );
      const running = (await getTaskInstance(db, runId, 'long'))!;
      expect(running.state).to.equal('running');

      const r = await cancelRun({ ...conn(), runId });
      expect(r).to.include({ state: 'cancelled', previousState: 'running', alreadyCancelled: false });
      expect(r.tasks).to.have.deep.members([
        { taskId: 'long', from: 'running' },
        { taskId: 'after', from: 'none' },
        { taskId: 'elsewhere', from: 'queued' },
      ]);
      const run = (await getRun(db, runId))!;
      expect(run).to.include({ state: 'cancelled', error: CANCEL_REASON });

      // The worker heard of it (its heartbeat is a minute away) and killed the whole tree.
      const all = await pidsIn(pids);
      await waitFor(
        async () => (await Promise.all(all.map(alive))).every((a) => !a),
        'every process of the task to end',
        15_000,
      );
      const size = (await stat(grow)).size;
      await sleep(500);
      expect((await stat(grow)).size, 'the grandchild kept writing').to.equal(size);

      // Its result arrives and is refused; so is any other late result of that try.
      await waitFor(() => worker.busy === 0, 'the worker to let go of the task');
      expect(
        await finishTry(
          db,
          { runId, taskId: 'long', tryNumber: 1 },
          running.claim_token!,
          {
            state: 'success',
            exitCode: 0,
            output: 'late',
            error: null,
            retryInMs: null,
            countsAsFailure: false,
          },
          db.channel('events'),
        ),
      ).to.equal(false);
      const tis = byTask(await listTaskInstances(db, runId));
      for (const id of ['long', 'after', 'elsewhere']) expect(tis.get(id)!.state, id).to.equal('cancelled');
      expect(tis.get('long')).to.include({ error: CANCEL_REASON, try_number: 1, output: null });
      expect(tis.get('after')).to.include({ try_number: 0 });
      expect((await listTries(db, runId, 'long')).map((t) => [t.try_number, t.state])).to.deep.equal([
        [1, 'cancelled'],
      ]);

      // A worker for the queued task's queue finds its message stale: it never starts.
      const late = new Worker({ db, broker, queues: ['nowhere'], concurrency: 1, dagsFolder: folder });
      extraWorkers.push(late);
      await late.start();
      await waitFor(async () => {
        const [depth] = await broker.depths(['nowhere']);
        return depth!.ready === 0 && (depth!.unacked ?? 0) === 0;
      }, 'the stale message to be consumed');
      expect(await getTaskInstance(db, runId, 'elsewhere')).to.include({ state: 'cancelled', try_number: 1 });
      expect(await listTries(db, runId, 'elsewhere')).to.deep.equal([]);

      // Cancelling again changes nothing; a run that ended otherwise is a conflict (exit 6).
      expect(await cancelRun({ ...conn(), runId })).to.include({
        alreadyCancelled: true,
        previousState: 'cancelled',
      });
      const ok = dag('cancel_done');
      ok.bash('a', { command: 'true' });
      const doneRun = await startRun(db, await insertDag(db, ok));
      expect((await waitForRun(db, doneRun)).state).to.equal('success');
      const err = await cancelRun({ ...conn(), runId: doneRun }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(AirtasksError);
      expect((err as AirtasksError).exitCode).to.equal(ExitCode.CONFLICT);
      expect((err as Error).message).to.match(/already ended \(success\).*tasks clear/);
      expect((await getRun(db, doneRun))!.state).to.equal('success');
      const missing = await cancelRun({ ...conn(), runId: 'no_such_run' }).catch((e: unknown) => e);
      expect((missing as AirtasksError).exitCode).to.equal(ExitCode.NOT_FOUND);
    });

    it('clear --downstream re-runs a task and everything after it; try numbers go on, history stays', async () => {
      const flag = path.join(folder, `flag-${randomUUID()}`);
      const d = dag('clear_me');
      const a = d.bash('a', { command: 'echo a' });
      const b = d.bash('b', {
        command: 'test -f {{ conf.flag | shquote }} && echo b-ok',
        upstream: a,
        retries: 1,
        retryDelay: '50ms',
      });
      const c = d.bash('c', { command: 'echo "c after {{ outputs.b }}"', upstream: b });
      d.bash('side', { command: 'echo side', upstream: a });
      void c;
      const stored = await insertDag(db, d);
      const runId = await startRun(db, stored, { flag });
      expect((await waitForRun(db, runId)).state).to.equal('failed');
      let tis = byTask(await listTaskInstances(db, runId));
      expect(tis.get('b')).to.include({ state: 'failed', try_number: 2, failed_tries: 2 });
      expect(tis.get('c')).to.include({ state: 'upstream_failed' });

      // b without --downstream: c stays upstream_failed, so the run ends failed again.
      await writeFile(flag, '');
      const only = await clearTask({ ...conn(), runId, taskId: 'b' });
      expect(only).to.include({ previousRunState: 'failed', runState: 'running' });
      expect(only.tasks).to.deep.equal([{ taskId: 'b', from: 'failed', tryNumber: 2 }]);
      expect((await waitForRun(db, runId)).state).to.equal('failed');
      tis = byTask(await listTaskInstances(db, runId));
      expect(tis.get('b')).to.include({ state: 'success', try_number: 3, failed_tries: 0, output: 'b-ok' });
      expect(tis.get('c')).to.include({ state: 'upstream_failed' });

      const all = await clearTask({ ...conn(), runId, taskId: 'b', downstream: true });
      expect(all.tasks.map((t) => t.taskId).sort()).to.deep.equal(['b', 'c']);
      expect((await waitForRun(db, runId)).state).to.equal('success');
      tis = byTask(await listTaskInstances(db, runId));
      expect(tis.get('a')).to.include({ state: 'success', try_number: 1 });
      expect(tis.get('side')).to.include({ state: 'success', try_number: 1 });
      expect(tis.get('b')).to.include({ state: 'success', try_number: 4 });
      expect(tis.get('c')).to.include({ state: 'success', try_number: 1, output: 'c after b-ok' });
      expect((await listTries(db, runId, 'b')).map((t) => [t.try_number, t.state])).to.deep.equal([
        [1, 'failed'],
        [2, 'failed'],
        [3, 'success'],
        [4, 'success'],
      ]);
      const run = (await getRun(db, runId))!;
      expect(run.ended_at).to.be.instanceOf(Date);
    });

    it('clear refuses a queued or running task and changes nothing; a cancelled run can be cleared', async () => {
      const d = dag('clear_busy');
      const slow = d.bash('slow', { command: 'sleep 30' });
      d.bash('next', { command: 'echo next', upstream: slow });
      const runId = await startRun(db, await insertDag(db, d));
      await waitFor(
        async () => (await getTaskInstance(db, runId, 'slow'))?.state === 'running',
        'slow to run',
      );
      const err = await clearTask({ ...conn(), runId, taskId: 'slow', downstream: true }).catch(
        (e: unknown) => e,
      );
      expect((err as AirtasksError).exitCode).to.equal(ExitCode.CONFLICT);
      expect((err as Error).message).to.include('"slow" is running');
      expect(await getTaskInstance(db, runId, 'slow')).to.include({ state: 'running', try_number: 1 });
      const unknown = await clearTask({ ...conn(), runId, taskId: 'nope' }).catch((e: unknown) => e);
      expect((unknown as AirtasksError).exitCode).to.equal(ExitCode.NOT_FOUND);
      expect((unknown as Error).message).to.include('its tasks: slow, next');

      await cancelRun({ ...conn(), runId });
      // A cancelled run can be cleared: the cleared task is evaluated again.
      const cleared = await clearTask({ ...conn(), runId, taskId: 'next' });
      expect(cleared).to.include({ previousRunState: 'cancelled', runState: 'running' });
      // slow stays cancelled, so next (all_success) becomes upstream_failed and the run fails: it was re-evaluated.
      const run = await waitForRun(db, runId);
      expect(run).to.include({ state: 'failed', error: null });
      expect(await getTaskInstance(db, runId, 'next')).to.include({ state: 'upstream_failed' });
    });

    it('runTimeout: fails the run, stops its running tasks and cancels the rest', async () => {
      const pids = path.join(folder, `pids-${randomUUID()}`);
      const grow = path.join(folder, `grow-${randomUUID()}`);
      const d = dag('run_timeout', { runTimeout: '1s' });
      const long = d.bash('long', { command: treeCommand(pids, grow) });
      d.bash('after', { command: 'echo never', upstream: long });
      const runId = await startRun(db, await insertDag(db, d));
      const run = await waitForRun(db, runId);
      expect(run.state).to.equal('failed');
      expect(run.error).to.equal('run timed out after 1s (runTimeout)');
      const tis = byTask(await listTaskInstances(db, runId));
      expect(tis.get('long')).to.include({ state: 'cancelled', error: run.error });
      expect(tis.get('after')).to.include({ state: 'cancelled', try_number: 0 });
      const all = await pidsIn(pids);
      expect(all.length).to.be.at.least(4);
      await waitFor(
        async () => (await Promise.all(all.map(alive))).every((a) => !a),
        'every process of the task to end',
        15_000,
      );
      expect(run.ended_at!.getTime() - run.started_at!.getTime()).to.be.at.least(1000);
    });

    it('task timeout: kills the whole process tree of each try, and the task retries', async () => {
      const dir = path.join(folder, `tt-${randomUUID()}`);
      await writeFile(dir, ''); // a marker: file names below are derived from it
      const d = dag('task_timeout');
      d.bash('tree', {
        command: treeCommand(`${dir}.pids.{{ try_number }}`, `${dir}.grow.{{ try_number }}`),
        timeout: '1s',
        retries: 1,
        retryDelay: '100ms',
      });
      const runId = await startRun(db, await insertDag(db, d));
      const run = await waitForRun(db, runId, 25_000);
      expect(run.state).to.equal('failed');
      expect(await getTaskInstance(db, runId, 'tree')).to.include({
        state: 'failed',
        try_number: 2,
        failed_tries: 2,
      });
      const tries = await listTries(db, runId, 'tree');
      expect(tries.map((t) => [t.try_number, t.state])).to.deep.equal([
        [1, 'failed'],
        [2, 'failed'],
      ]);
      for (const t of tries) expect(t.error).to.include('timed out after 1000 ms');
      for (const n of [1, 2]) {
        const all = await pidsIn(`${dir}.pids.${n}`);
        expect(all.length, `try ${n}`).to.be.at.least(4);
        for (const pid of all) expect(await alive(pid), `try ${n}: pid ${pid}`).to.equal(false);
        const size = (await stat(`${dir}.grow.${n}`)).size;
        expect(size).to.be.above(0);
        await sleep(400);
        expect((await stat(`${dir}.grow.${n}`)).size, `try ${n}: the file kept growing`).to.equal(size);
      }
    });

    it('branching: runs the chosen paths, skips the others, the join runs; an unknown choice fails the branch', async () => {
      await writeDagFile(
        folder,
        `branching_${kind}.ts`,
        `
export const d = dag<{ pick: string | string[] }>('branchy');
const choose = d.branch('choose', { run: (ctx) => (ctx.conf.pick === 'ref' ? b : ctx.conf.pick) });
const a = d.bash('a', { command: 'echo a', upstream: choose });
const a2 = d.bash('a2', { command: 'echo a2', upstream: a });
const b = d.bash('b', { command: 'echo b', upstream: choose });
const c = d.bash('c', { command: 'echo c', upstream: choose, triggerRule: 'all_done' });
d.bash('join', { command: 'echo joined', upstream: [a2, b, c], triggerRule: 'none_failed_min_one_success' });
d.bash('strict', { command: 'echo strict', upstream: [a2, b] });
`,
      );
      const stored = (await insertDagFile(db, folder, `branching_${kind}.ts`)).get('branchy')!;
      const states = async (runId: string) =>
        Object.fromEntries((await listTaskInstances(db, runId)).map((t) => [t.task_id, t.state]));

      const one = await startRun(db, stored, { pick: 'a' });
      expect((await waitForRun(db, one)).state).to.equal('success');
      expect(await states(one)).to.deep.equal({
        choose: 'success',
        a: 'success',
        a2: 'success',
        b: 'skipped',
        c: 'skipped',
        join: 'success',
        strict: 'skipped',
      });
      expect((await getTaskInstance(db, one, 'choose'))!.output).to.deep.equal(['a']);

      const ref = await startRun(db, stored, { pick: 'ref' });
      expect((await waitForRun(db, ref)).state).to.equal('success');
      expect(await states(ref)).to.include({
        a: 'skipped',
        a2: 'skipped',
        b: 'success',
        join: 'success',
        strict: 'skipped',
      });

      const two = await startRun(db, stored, { pick: ['b', 'c'] });
      expect((await waitForRun(db, two)).state).to.equal('success');
      expect(await states(two)).to.include({ a: 'skipped', b: 'success', c: 'success', join: 'success' });

      const bad = await startRun(db, stored, { pick: 'a2' });
      expect((await waitForRun(db, bad)).state).to.equal('failed');
      const choose = (await getTaskInstance(db, bad, 'choose'))!;
      expect(choose.state).to.equal('failed');
      expect(choose.error).to.equal(
        'branch task "choose" chose "a2", which is not one of its direct downstream tasks (a, b, c)',
      );
      expect(await states(bad)).to.include({ a: 'upstream_failed', b: 'upstream_failed', c: 'success' });

      // Clearing the branch with its downstream lets it choose again (the skips are undone).
      await db.query(`UPDATE dag_runs SET conf = '{"pick": "b"}' WHERE run_id = $1`, [one]);
      await clearTask({ ...conn(), runId: one, taskId: 'choose', downstream: true });
      expect((await waitForRun(db, one)).state).to.equal('success');
      expect(await states(one)).to.include({ a: 'skipped', a2: 'skipped', b: 'success', join: 'success' });
      expect((await getTaskInstance(db, one, 'join'))!.try_number).to.equal(2);
    });
  });
}
