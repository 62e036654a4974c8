/**
 * trigger_dag and multi_trigger through the real scheduler and a worker: the shipped multi_trigger example
 * (100 target runs), every form of items, idempotence under retries, and the ways a trigger task fails.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { readLogs } from '../../src/engine/store/logs.js';
import { getRun, listRuns, type RunRow } from '../../src/engine/store/runs.js';
import { getTaskInstance } from '../../src/engine/store/task-instances.js';
import { Worker } from '../../src/engine/worker/worker.js';
import {
  insertDagFile,
  removeDir,
  startRun,
  tempDir,
  waitFor,
  waitForRun,
  writeDagFile,
  type StoredDag,
} from '../helpers/engine.js';
import { freshDb, requireService } from '../helpers/env.js';

type TestDb = Awaited<ReturnType<typeof freshDb>>;

const EXAMPLES = fileURLToPath(new URL('../../examples/dags', import.meta.url));

const TRIGGERS = `
export const target = dag('echo_conf', {
  params: { n: { type: 'integer', minimum: 0, default: 0 } },
});
target.node('echo', { run: (ctx) => ctx.conf });

export const strict = dag('strict_target', { params: { count: { type: 'integer', minimum: 1 } } });
strict.bash('noop', { command: 'true' });

export const failing = dag('failing_target');
failing.bash('fail', { command: 'exit 1' });

export const t = dag('triggers');
t.multiTrigger('from_list', { dagId: 'echo_conf', items: [{ n: 1 }, 'two', 3, [4]] });
t.multiTrigger('from_generator', {
  dagId: 'echo_conf',
  items: (function* () { for (let i = 0; i < 3; i++) yield { n: i }; })(),
});
t.multiTrigger('from_function', { dagId: 'echo_conf', items: (ctx) => [ctx.conf.base, ctx.conf.base + 1] });
t.multiTrigger('from_async_function', {
  dagId: 'echo_conf',
  items: async () => { await new Promise((r) => setTimeout(r, 10)); return new Set(['a', 'b']); },
});
t.multiTrigger('from_async_generator', {
  dagId: 'echo_conf',
  items: async function* () { yield { n: 7 }; yield { n: 8 }; },
});
t.triggerDag('single', {
  dagId: 'echo_conf',
  conf: { n: 5, label: 'run of {{ dag_id }} for {{ conf.base }}' },
  waitForCompletion: true,
  pollInterval: '100ms',
});
t.triggerDag('computed', { dagId: 'echo_conf', conf: (ctx) => ({ n: ctx.conf.base * 10 }) });

export const bad = dag('bad_triggers', { defaults: { retries: 0 } });
bad.multiTrigger('empty_list', { dagId: 'echo_conf', items: [] });
bad.multiTrigger('returns_undefined', { dagId: 'echo_conf', items: () => undefined as unknown as number[] });
bad.multiTrigger('returns_empty', { dagId: 'echo_conf', items: async () => [] });
bad.multiTrigger('unknown_target', { dagId: 'no_such_dag', items: [1] });
bad.multiTrigger('invalid_conf', { dagId: 'strict_target', items: [{ count: 2 }, { count: 0 }] });

export const retried = dag('retried_trigger');
retried.multiTrigger('wait_for_failures', {
  dagId: 'failing_target',
  items: [1, 2],
  waitForCompletion: true,
  pollInterval: '100ms',
  retries: 1,
  retryDelay: '10ms',
});
`;

describe('trigger_dag and multi_trigger through scheduler and worker', function () {
  this.timeout(90_000);
  let db: TestDb;
  let broker: PgQueueBroker;
  let scheduler: Scheduler;
  let workers: Worker[] = [];
  let folder: string;
  let dags: Map<string, StoredDag>;

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    folder = await tempDir('airtasks-triggers-');
    await writeFile(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
    await writeDagFile(folder, 'triggers.ts', TRIGGERS);
    dags = await insertDagFile(db, folder, 'triggers.ts');
    broker = new PgQueueBroker(db, { pollMs: 100 });
    scheduler = new Scheduler({ db, broker, dagsFolder: null, sweepIntervalMs: 500 });
    await scheduler.start();
  });

  afterEach(async () => {
    for (const w of workers) await w.stop();
    workers = [];
  });

  after(async () => {
    await scheduler?.stop();
    await broker?.close();
    await db?.drop();
    await removeDir(folder);
  });

  async function startWorker(dagsFolder: string, concurrency = 8) {
    const w = new Worker({ db, broker, queues: ['worker'], concurrency, dagsFolder, heartbeatMs: 300 });
    await w.start();
    workers.push(w);
  }

  /** Every run of a DAG, waited for until each has ended. */
  async function endedRunsOf(dagId: string, expected: number): Promise<RunRow[]> {
    return waitFor(
      async () => {
        const rs = await listRuns(db, { dagId, limit: 10_000 });
        return rs.length >= expected && rs.every((r) => ['success', 'failed'].includes(r.state)) && rs;
      },
      `${expected} ended runs of ${dagId}`,
      60_000,
      200,
    );
  }

  it('the shipped multi_trigger example starts 100 target runs once, and all of them succeed', async () => {
    const example = await insertDagFile(db, EXAMPLES, 'multi_trigger.ts');
    await startWorker(EXAMPLES);
    // The sleep is a param of the example: 0 keeps the test quick.
    const runId = await startRun(db, example.get('example_multi_trigger')!, { count: 100, sleep: 0 });
    const run = await waitForRun(db, runId, 30_000);
    expect(run.state).to.equal('success');
    const ti = await getTaskInstance(db, runId, 'trigger_messages');
    const ids = ti!.output as string[];
    expect(ids).to.have.length(100);
    expect(ids[7]).to.equal(`${runId}__trigger_messages__7`);

    const targets = await endedRunsOf('example_multi_trigger_target', 100);
    expect(targets).to.have.length(100);
    expect(new Set(targets.map((r) => r.run_id))).to.deep.equal(new Set(ids));
    expect(targets.map((r) => r.state).filter((s) => s !== 'success')).to.deep.equal([]);
    expect(targets.every((r) => r.run_type === 'triggered')).to.equal(true);
    expect(targets.map((r) => r.conf.message).sort((a, b) => Number(a) - Number(b))).to.deep.equal(
      Array.from({ length: 100 }, (_, i) => i),
    );
    const hash = example.get('example_multi_trigger_target')!.hash;
    expect(targets.every((r) => r.dag_hash === hash)).to.equal(true);
    const log = await readLogs(db, ids[42]!, 'print_message');
    expect(log.map((l) => l.line)).to.include('Hello from message #42');
  });

  it('reads items from a list, a generator, a function, an async function and an async generator', async () => {
    await startWorker(folder);
    const runId = await startRun(db, dags.get('triggers')!, { base: 20 });
    const run = await waitForRun(db, runId, 30_000);
    expect(run.state).to.equal('success');
    const confsOf = async (taskId: string) => {
      const ids = (await getTaskInstance(db, runId, taskId))!.output as string[];
      expect(ids).to.deep.equal(ids.map((_, i) => `${runId}__${taskId}__${i}`));
      const runs = await Promise.all(ids.map((id) => getRun(db, id)));
      return runs.map((r) => r!.conf);
    };
    // Objects are the conf as they are; other values arrive as { item }; the target's default n is merged in.
    expect(await confsOf('from_list')).to.deep.equal([
      { n: 1 },
      { item: 'two', n: 0 },
      { item: 3, n: 0 },
      { item: [4], n: 0 },
    ]);
    expect(await confsOf('from_generator')).to.deep.equal([{ n: 0 }, { n: 1 }, { n: 2 }]);
    expect(await confsOf('from_function')).to.deep.equal([
      { item: 20, n: 0 },
      { item: 21, n: 0 },
    ]);
    expect(await confsOf('from_async_function')).to.deep.equal([
      { item: 'a', n: 0 },
      { item: 'b', n: 0 },
    ]);
    expect(await confsOf('from_async_generator')).to.deep.equal([{ n: 7 }, { n: 8 }]);

    // trigger_dag: templated conf, waited for (so its target run has ended), output = the run id.
    const single = (await getTaskInstance(db, runId, 'single'))!.output as string;
    expect(single).to.equal(`${runId}__single__0`);
    const singleRun = await getRun(db, single);
    expect(singleRun!.state).to.equal('success');
    expect(singleRun!.conf).to.deep.equal({ n: 5, label: 'run of triggers for 20' });
    const echoed = await getTaskInstance(db, single, 'echo');
    expect(echoed!.output).to.deep.equal({ n: 5, label: 'run of triggers for 20' });
    const computed = (await getTaskInstance(db, runId, 'computed'))!.output as string;
    expect((await getRun(db, computed))!.conf).to.deep.equal({ n: 200 });
  });

  it('fails the task with a clear error for empty or missing items, an unknown target or invalid conf', async () => {
    await startWorker(folder);
    const runId = await startRun(db, dags.get('bad_triggers')!);
    const run = await waitForRun(db, runId, 30_000);
    expect(run.state).to.equal('failed');
    const errorOf = async (taskId: string) => {
      const ti = await getTaskInstance(db, runId, taskId);
      expect(ti!.state, taskId).to.equal('failed');
      return ti!.error!;
    };
    expect(await errorOf('empty_list')).to.match(/no items: the list is empty/);
    expect(await errorOf('returns_undefined')).to.match(/no items: the items function returned undefined/);
    expect(await errorOf('returns_empty')).to.match(/no items: the list is empty/);
    expect(await errorOf('unknown_target')).to.match(/unknown DAG "no_such_dag"/);
    expect(await errorOf('invalid_conf')).to.equal(
      'invalid conf for DAG "strict_target": item #1: /count must be >= 1',
    );
    // Nothing was started for any of them: invalid conf refuses every item, not just the bad one.
    const started = await listRuns(db, { limit: 10_000 });
    expect(started.filter((r) => r.run_id.startsWith(`${runId}__`))).to.deep.equal([]);
  });

  it('does not start a run twice when a retried try triggers again', async () => {
    await startWorker(folder);
    const runId = await startRun(db, dags.get('retried_trigger')!);
    const run = await waitForRun(db, runId, 30_000);
    // Both target runs fail, so each try of the waiting task fails: try 2 finds the runs of try 1.
    expect(run.state).to.equal('failed');
    const ti = await getTaskInstance(db, runId, 'wait_for_failures');
    expect(ti!.try_number).to.equal(2);
    expect(ti!.error).to.match(/^2 of 2 run\(s\) of failing_target did not succeed/);
    const children = (await listRuns(db, { dagId: 'failing_target', limit: 100 })).filter((r) =>
      r.run_id.startsWith(runId),
    );
    expect(children.map((r) => r.run_id).sort()).to.deep.equal([
      `${runId}__wait_for_failures__0`,
      `${runId}__wait_for_failures__1`,
    ]);
    const second = (await readLogs(db, runId, 'wait_for_failures', { tryNumber: 2 })).map((l) => l.line);
    expect(second.join('\n'))
      .to.include('started 0 run(s) of failing_target')
      .and.include('2 existed already');
  });
});
