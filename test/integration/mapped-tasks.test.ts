/**
 * Mapped tasks through the real scheduler and workers: a list from an upstream output of 1,000 items with a
 * fan-in that sums them, a failing item with retries under all_success and all_done, an empty list, a clear
 * of one item, maxActiveItems, hostile items that must stay data in bash, and the same DAG in `dags test`.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { runLocally } from '../../src/engine/local/local-run.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { getTaskInstance, listTaskInstances, listTries } from '../../src/engine/store/task-instances.js';
import { Worker } from '../../src/engine/worker/worker.js';
import { clearTask } from '../../src/services/run-control.js';
import { showRun } from '../../src/services/runs.js';
import {
  insertDagFile,
  removeDir,
  startRun,
  tempDir,
  waitForRun,
  writeDagFile,
  type StoredDag,
} from '../helpers/engine.js';
import { DATABASE_URL, freshDb, requireService } from '../helpers/env.js';

type TestDb = Awaited<ReturnType<typeof freshDb>>;

const MARKER = path.join(process.env.TMPDIR ?? '/tmp', `airtasks-mapped-pwned-${process.pid}`);

const DAGS = `
export const fan = dag('map_fan_in');
const numbers = fan.node('numbers', { run: (ctx) => Array.from({ length: ctx.conf.n ?? 1000 }, (_, i) => i) });
const doubled = fan.node('double', { map: { over: numbers }, run: (ctx) => (ctx.item as number) * 2 });
fan.node('sum', { upstream: doubled, run: (ctx) => ctx.output<number[]>(doubled).reduce((a, b) => a + b, 0) });

export const failing = dag('map_failing', { defaults: { retries: 1, retryDelay: '10ms' } });
const items = failing.bash('items', {
  map: { over: ['a', 'b', 'c'] },
  // b fails every try; c fails its first try only.
  command: 'case "{{ item }}" in b) exit 3;; c) [ {{ try_number }} -ge 2 ] || exit 4;; esac; echo "{{ item }}-{{ map_index }}"',
});
failing.bash('needs_all', { upstream: items, command: 'echo never' });
failing.node('after_all', { upstream: items, triggerRule: 'all_done', run: (ctx) => ctx.output(items) });

export const empty = dag('map_empty');
const none = empty.bash('none', { map: { over: () => [] }, command: 'echo {{ item }}' });
empty.bash('needs_all', { upstream: none, command: 'echo never' });
empty.node('after_all', { upstream: none, triggerRule: 'all_done', run: (ctx) => ctx.output(none) });

export const limited = dag('map_limited');
limited.bash('slow', {
  map: { over: [1, 2, 3, 4, 5, 6, 7, 8], maxActiveItems: 2 },
  command: 'sleep 0.3; echo {{ item }}',
});

export const hostile = dag('map_hostile');
hostile.bash('echo', {
  map: { over: ${JSON.stringify([
    `$(touch ${MARKER})`,
    `\`touch ${MARKER}\``,
    `'; touch ${MARKER}; '`,
    `"; touch ${MARKER}; "`,
    `{{ 7 * 7 }}`,
    `a\nb`,
  ])} },
  command: 'printf "%s" {{ item }} | base64 -w0',
});

export const tooMany = dag('map_too_many');
tooMany.node('list', { map: { over: () => [1, 2, 3], maxItems: 2 }, run: () => 1 });
`;

describe('mapped tasks through scheduler and workers', function () {
  this.timeout(120_000);
  let db: TestDb;
  let broker: PgQueueBroker;
  let scheduler: Scheduler;
  let worker: Worker;
  let folder: string;
  let dags: Map<string, StoredDag>;

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    folder = await tempDir('airtasks-mapped-');
    await writeFile(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
    await writeDagFile(folder, 'mapped.ts', DAGS);
    dags = await insertDagFile(db, folder, 'mapped.ts');
    broker = new PgQueueBroker(db, { pollMs: 100 });
    scheduler = new Scheduler({ db, broker, dagsFolder: null, sweepIntervalMs: 500 });
    await scheduler.start();
    worker = new Worker({
      db,
      broker,
      queues: ['worker'],
      concurrency: 8,
      dagsFolder: folder,
      heartbeatMs: 300,
    });
    await worker.start();
  });

  after(async () => {
    await worker?.stop();
    await scheduler?.stop();
    await broker?.close();
    await db?.drop();
    await removeDir(folder);
  });

  const conn = () => ({ databaseUrl: DATABASE_URL, schema: db.schema });

  it('maps over 1,000 items of an upstream output and sums them in a fan-in, in item order', async () => {
    const runId = await startRun(db, dags.get('map_fan_in')!);
    const run = await waitForRun(db, runId, 90_000);
    expect(run.state).to.equal('success');
    expect((await getTaskInstance(db, runId, 'sum'))!.output).to.equal(999 * 1000);
    expect((await getTaskInstance(db, runId, 'double[999]'))!.output).to.equal(1998);
    const shown = await showRun({ ...conn(), runId });
    const double = shown.tasks.find((t) => t.taskId === 'double')!;
    expect(double.state).to.equal('success');
    expect(double.map).to.deep.equal({ items: 1000, counts: { success: 1000 } });
    expect(shown.tasks.map((t) => t.taskId).sort()).to.deep.equal(['double', 'numbers', 'sum']);
  });

  it('retries each item alone; one failed item fails all_success, and all_done gets every output', async () => {
    const runId = await startRun(db, dags.get('map_failing')!);
    const run = await waitForRun(db, runId, 30_000);
    expect(run.state).to.equal('failed');
    const state = async (id: string) => (await getTaskInstance(db, runId, id))!.state;
    expect(await state('items[0]')).to.equal('success');
    expect(await state('items[1]')).to.equal('failed');
    expect(await state('items[2]')).to.equal('success');
    expect((await listTries(db, runId, 'items[1]')).map((t) => t.state)).to.deep.equal(['failed', 'failed']);
    expect((await listTries(db, runId, 'items[2]')).map((t) => t.state)).to.deep.equal(['failed', 'success']);
    expect(await state('needs_all')).to.equal('upstream_failed');
    expect((await getTaskInstance(db, runId, 'after_all'))!.output).to.deep.equal(['a-0', null, 'c-2']);
    const shown = await showRun({ ...conn(), runId, items: true });
    const group = shown.tasks.find((t) => t.taskId === 'items')!;
    expect(group.state).to.equal('failed');
    expect(group.map!.counts).to.deep.equal({ success: 2, failed: 1 });
    expect(group.map!.list!.map((t) => t.taskId)).to.deep.equal(['items[0]', 'items[1]', 'items[2]']);
  });

  it('skips a task mapped over an empty list, and its downstream by trigger rules', async () => {
    const runId = await startRun(db, dags.get('map_empty')!);
    const run = await waitForRun(db, runId, 30_000);
    const states = Object.fromEntries((await listTaskInstances(db, runId)).map((t) => [t.task_id, t.state]));
    expect(states).to.deep.equal({ none: 'skipped', needs_all: 'skipped', after_all: 'success' });
    expect((await getTaskInstance(db, runId, 'after_all'))!.output).to.deep.equal([]);
    expect(run.state).to.equal('success');
  });

  it('clears one item: it runs again (and its fan-in with --downstream), the other items do not', async () => {
    const runId = await startRun(db, dags.get('map_fan_in')!, { n: 5 });
    expect((await waitForRun(db, runId, 30_000)).state).to.equal('success');
    const cleared = await clearTask({ ...conn(), runId, taskId: 'double[3]', downstream: true });
    expect(cleared.tasks.map((t) => t.taskId).sort()).to.deep.equal(['double[3]', 'sum']);
    expect((await waitForRun(db, runId, 30_000)).state).to.equal('success');
    const tries = async (id: string) => (await listTries(db, runId, id)).length;
    expect(await tries('double[3]')).to.equal(2);
    expect(await tries('double[2]')).to.equal(1);
    expect(await tries('sum')).to.equal(2);
    expect((await getTaskInstance(db, runId, 'sum'))!.output).to.equal(20);
    const missing = await clearTask({ ...conn(), runId, taskId: 'double[9]' }).catch((e: unknown) => e);
    expect((missing as Error).message).to.match(/no item "double\[9\]"/);
  });

  it('runs at most maxActiveItems items at once', async () => {
    const runId = await startRun(db, dags.get('map_limited')!);
    expect((await waitForRun(db, runId, 30_000)).state).to.equal('success');
    const tries = (await listTries(db, runId)).filter((t) => t.task_id.startsWith('slow['));
    expect(tries).to.have.length(8);
    let most = 0;
    for (const t of tries) {
      const at = t.started_at!.getTime();
      const overlapping = tries.filter((x) => x.started_at!.getTime() <= at && x.ended_at!.getTime() > at);
      most = Math.max(most, overlapping.length);
    }
    expect(most).to.be.within(1, 2);
  });

  it('passes hostile items to bash as data, never as code', async () => {
    const runId = await startRun(db, dags.get('map_hostile')!);
    expect((await waitForRun(db, runId, 30_000)).state).to.equal('success');
    const list = (await getTaskInstance(db, runId, 'echo'))!.output as string[];
    for (let i = 0; i < list.length; i++) {
      const out = (await getTaskInstance(db, runId, `echo[${i}]`))!.output as string;
      expect(Buffer.from(out, 'base64').toString()).to.equal(list[i]);
    }
    expect(existsSync(MARKER)).to.equal(false);
  });

  it('fails a task with more items than its map.maxItems, saying so', async () => {
    const runId = await startRun(db, dags.get('map_too_many')!);
    expect((await waitForRun(db, runId, 30_000)).state).to.equal('failed');
    const ti = (await getTaskInstance(db, runId, 'list'))!;
    expect(ti.error).to.match(/3 items is more than map.maxItems \(2\)/);
    expect((await listTaskInstances(db, runId)).map((t) => t.task_id)).to.deep.equal(['list']);
  });

  it('runs mapped tasks in `dags test` too', async () => {
    const r = await runLocally({ dagsFolder: folder, dagId: 'map_fan_in', conf: { n: 20 } });
    expect(r.state).to.equal('success');
    expect(r.tasks.find((t) => t.taskId === 'sum')!.output).to.equal(19 * 20);
    expect(r.tasks.filter((t) => t.taskId.startsWith('double['))).to.have.length(20);
    const f = await runLocally({ dagsFolder: folder, dagId: 'map_failing', conf: {} });
    expect(f.state).to.equal('failed');
    expect(f.tasks.find((t) => t.taskId === 'after_all')!.output).to.deep.equal(['a-0', null, 'c-2']);
    const e = await runLocally({ dagsFolder: folder, dagId: 'map_empty', conf: {} });
    expect(e.state).to.equal('success');
    expect(e.tasks.find((t) => t.taskId === 'none')!.state).to.equal('skipped');
  });
});
