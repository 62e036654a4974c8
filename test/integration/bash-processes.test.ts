/**
 * The processes of bash tasks, with the worker in a process of its own (RabbitMQ, a scheduler here): when
 * the worker is SIGKILLed its tasks' whole process trees die with it (its process host's lifeline); a
 * process host that is killed takes its commands with it, their tries are lost and run again under a new
 * host; a timeout kills a command's background children; a command's background leftovers die when it exits;
 * a worker whose main thread is stuck is killed by its heartbeat thread, and its tasks with it.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { RabbitBroker } from '../../src/engine/broker/rabbitmq.js';
import { dag } from '../../src/engine/dag/builder.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { getTaskInstance, listTries } from '../../src/engine/store/task-instances.js';
import { Daemon } from '../helpers/cli.js';
import { evaluate, openInspector } from '../helpers/inspector.js';
import { insertDag, removeDir, startRun, tempDir, waitFor, waitForRun } from '../helpers/engine.js';
import { BROKER_URL, DATABASE_URL, freshDb, requireService, uniqueName } from '../helpers/env.js';
import { alive, hostsOf, pidsIn } from '../helpers/processes.js';

const WORKER = fileURLToPath(new URL('../helpers/worker-process.ts', import.meta.url));
const QUEUE = 'worker';

/**
 * A command that writes its pid and those of a background `sleep 300`, a subshell and its own background
 * `sleep 300`, and another background `sleep 300` (5 pids) to `pids`, then waits for them.
 */
function treeCommand(pids: string) {
  const f = `'${pids}'`;
  return [
    `echo $$ >> ${f}`,
    `sleep 300 & echo $! >> ${f}`,
    `( sleep 300 & echo $! >> ${f}; wait ) &`,
    `echo $! >> ${f}`,
    `sleep 300 & echo $! >> ${f}`,
    `wait`,
  ].join('\n');
}

describe('bash task processes (worker in its own process)', function () {
  this.timeout(60_000);
  let db: Awaited<ReturnType<typeof freshDb>>;
  let broker: RabbitBroker;
  let scheduler: Scheduler;
  let folder: string;
  const prefix = `${uniqueName('test')}.`;
  const workers: Daemon[] = [];
  const leftovers: number[] = [];

  before(async function () {
    await requireService(this, 'postgres');
    await requireService(this, 'rabbitmq');
    db = await freshDb();
    folder = await tempDir('airtasks-procs-');
    broker = await RabbitBroker.connect({ url: BROKER_URL, prefix });
    scheduler = new Scheduler({ db, broker, dagsFolder: null, sweepIntervalMs: 500 });
    await scheduler.start();
  });

  after(async () => {
    for (const w of workers) await w.stop('SIGKILL');
    // Whatever a failed test left behind must not outlive it.
    for (const pid of leftovers) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone, as it should be.
      }
    }
    await scheduler?.stop();
    await broker?.deleteQueues([QUEUE]);
    await broker?.close();
    await db?.drop();
    await removeDir(folder);
  });

  async function startWorker(env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
    const w = new Daemon(
      [],
      {
        TEST_WORKER_DATABASE_URL: DATABASE_URL,
        TEST_WORKER_SCHEMA: db.schema,
        TEST_WORKER_BROKER_URL: BROKER_URL,
        TEST_WORKER_PREFIX: prefix,
        TEST_WORKER_QUEUE: QUEUE,
        TEST_WORKER_DAGS: folder,
        ...env,
      },
      { script: WORKER },
    );
    workers.push(w);
    await w.waitFor('test worker started', 30_000);
    return w;
  }

  /** Starts a run of one bash task running treeCommand; resolves to its 5 pids once they are all running. */
  async function startTree(dagId: string): Promise<number[]> {
    const pids = path.join(folder, `${randomUUID()}.pids`);
    const d = dag(dagId);
    d.bash('tree', { command: treeCommand(pids) });
    await startRun(db, await insertDag(db, d));
    const all = await waitFor(async () => {
      const p = await pidsIn(pids).catch(() => []);
      return p.length === 5 && p;
    }, `the task's 5 processes (${pids})`);
    leftovers.push(...all);
    for (const pid of all) expect(await alive(pid), `pid ${pid}`).to.equal(true);
    return all;
  }

  async function expectAllGone(pids: number[], within: number) {
    await waitFor(
      async () => (await Promise.all(pids.map(alive))).every((a) => !a),
      `every process of the task to end (still alive: ${pids.join(' ')})`,
      within,
    );
  }

  it('a SIGKILLed worker takes its running tasks, background processes included, with it', async () => {
    const w = await startWorker();
    const pids = await startTree('lifeline');
    const hosts = await hostsOf(w.pid);
    expect(hosts, 'one process host per worker process').to.have.length(1);
    await w.stop('SIGKILL');
    await expectAllGone(pids, 5000);
    // The host leaves with them.
    await expectAllGone(hosts, 5000);
  });

  it('a process host that died takes its commands with it; their tries are lost and run again under a new host', async () => {
    const w = await startWorker();
    const pids = path.join(folder, `${randomUUID()}.pids`);
    const d = dag('host_lost');
    d.bash('tree', { command: treeCommand(pids) });
    const runId = await startRun(db, await insertDag(db, d));
    const first = await waitFor(async () => {
      const p = await pidsIn(pids).catch(() => []);
      return p.length === 5 && p;
    }, "the first try's 5 processes");
    leftovers.push(...first);
    const [host] = await hostsOf(w.pid);
    process.kill(host!, 'SIGKILL');
    await expectAllGone([host!, ...first], 5000);
    // The try is lost, not failed (the task has no retries): a second try runs the command again.
    const both = await waitFor(async () => {
      const p = await pidsIn(pids).catch(() => []);
      return p.length === 10 && p;
    }, "the second try's 5 processes");
    const second = both.slice(5);
    leftovers.push(...second);
    const [lost] = await listTries(db, runId, 'tree');
    expect(lost).to.include({ try_number: 1 });
    expect(lost!.error).to.match(/process host ended/);
    expect(await getTaskInstance(db, runId, 'tree')).to.include({
      try_number: 2,
      lost_tries: 1,
      failed_tries: 0,
    });
    const hosts = await hostsOf(w.pid);
    expect(hosts).to.have.length(1);
    expect(hosts[0]).to.not.equal(host);
    await w.stop('SIGKILL');
    await expectAllGone(second, 5000);
  });

  it('a worker whose main thread is stuck is killed by its heartbeat thread, its tasks with it', async () => {
    const w = await startWorker({
      TEST_WORKER_MAIN_STALL_KILL_MS: '1500',
      TEST_WORKER_LOG_LEVEL: 'error',
      // For the inspector (below): a port of its own.
      NODE_OPTIONS: [process.env.NODE_OPTIONS, '--inspect-port=0'].filter(Boolean).join(' '),
    });
    const pids = await startTree('stuck');
    const hosts = await hostsOf(w.pid);
    // Stuck for good, as an endless synchronous loop in a node task leaves it; the heartbeat goes on.
    void evaluate(await openInspector(w.pid, () => w.output), 'for (;;);').catch(() => undefined);
    await Promise.race([w.exited, new Promise((r) => setTimeout(r, 20_000))]);
    expect(w.child.signalCode, w.output).to.equal('SIGKILL');
    expect(w.output).to.include("the worker's main thread has not answered for");
    await expectAllGone(pids, 5000);
    await expectAllGone(hosts, 5000);
  });

  describe('with a worker running', () => {
    before(async () => {
      await startWorker();
    });

    it('a command that kills its process host every time fails after the free lost tries, and the worker goes on', async () => {
      const d = dag('host_killer', { defaults: { retries: 0 } });
      // bash -c's parent is the process host.
      d.bash('poison', { command: 'kill -KILL $PPID; sleep 5' });
      const runId = await startRun(db, await insertDag(db, d));
      const run = await waitForRun(db, runId, 30_000);
      expect(run.state).to.equal('failed');
      const ti = await getTaskInstance(db, runId, 'poison');
      expect(ti).to.include({ state: 'failed', lost_tries: 3, failed_tries: 1 });
      expect(ti!.error).to.match(/process host ended/);
      const ok = dag('after_poison');
      ok.bash('fine', { command: 'echo still here' });
      const next = await startRun(db, await insertDag(db, ok));
      expect((await waitForRun(db, next, 20_000)).state).to.equal('success');
    });

    it("a timeout kills the command's background children too", async () => {
      const pids = path.join(folder, `${randomUUID()}.pids`);
      const d = dag('timeout_tree');
      d.bash('tree', { command: treeCommand(pids), timeout: '1s' });
      const runId = await startRun(db, await insertDag(db, d));
      const run = await waitForRun(db, runId, 20_000).finally(async () =>
        leftovers.push(...(await pidsIn(pids).catch(() => []))),
      );
      expect(run.state).to.equal('failed');
      const [t] = await listTries(db, runId, 'tree');
      expect(t!.error).to.include('timed out after 1000 ms');
      const all = await pidsIn(pids);
      expect(all).to.have.length(5);
      await expectAllGone(all, 5000);
    });

    it('what a command leaves running in the background dies when it exits; the task succeeds', async () => {
      const pids = path.join(folder, `${randomUUID()}.pids`);
      await writeFile(pids, '');
      const d = dag('leftover');
      d.bash('left', {
        // Exits only once both have written their pids: the group kill at exit must not race the subshell.
        command: `sleep 300 & echo $! >> '${pids}'\n(sleep 300 & echo $! >> '${pids}') &\nwhile [ "$(wc -l < '${pids}')" -lt 2 ]; do sleep 0.05; done\necho done`,
      });
      const runId = await startRun(db, await insertDag(db, d));
      // Were they left running, the task would not end either: they hold its stdout.
      const run = await waitForRun(db, runId, 20_000).finally(async () =>
        leftovers.push(...(await pidsIn(pids).catch(() => []))),
      );
      expect(run.state).to.equal('success');
      expect(await getTaskInstance(db, runId, 'left')).to.include({ state: 'success', output: 'done' });
      const all = await pidsIn(pids);
      expect(all).to.have.length(2);
      await expectAllGone(all, 2000);
    });
  });
});
