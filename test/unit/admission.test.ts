/** Admission: which ready tasks a scheduling pass queues under DAG limits and pool slots, with fake row locks. */
import { expect } from 'chai';
import pino from 'pino';
import type { SerializedDag } from '../../src/core/dag-model.js';
import { Admission, type AdmittedRun, type SlotLocks } from '../../src/engine/scheduler/admission.js';
import type { QueueRequest } from '../../src/engine/store/queueing.js';
import { serialized, task } from './fixtures.js';

/** Slot locks answering from fixed tables, recording what they were asked in order. */
function fakeLocks(dagFree: Record<string, number>, pools: Record<string, { slots: number; free: number }>) {
  const calls: string[] = [];
  const locks: SlotLocks = {
    dags: async (_c, ids) => {
      calls.push(`dags:${[...ids].sort().join(',')}`);
      return new Map(Object.entries(dagFree).filter(([id]) => ids.includes(id)));
    },
    pools: async (_c, names) => {
      calls.push(`pools:${[...names].sort().join(',')}`);
      return new Map(
        Object.entries(pools)
          .filter(([n]) => names.includes(n))
          .map(([n, p]) => [n, { ...p }]),
      );
    },
  };
  return { locks, calls };
}

/** A logger that keeps the warnings' messages. */
function warnings() {
  const messages: string[] = [];
  const log = pino(
    { level: 'warn' },
    { write: (line: string) => void messages.push((JSON.parse(line) as { msg: string }).msg) },
  );
  return { log, messages };
}

const c = { query: () => Promise.reject(new Error('no statements in this test')) };
const q = (runId: string, taskId: string): QueueRequest => ({ runId, taskId, from: 'none' });

describe('Admission: tasks to queue under DAG limits and pool slots', () => {
  const dagA: SerializedDag = serialized(
    [
      task('light', [], { priorityWeight: 1 }),
      task('heavy', [], { priorityWeight: 10 }),
      task('mid', [], { priorityWeight: 5 }),
    ],
    'a',
  );
  const dags = new Map([['hash_a', dagA]]);
  const run = (runId: string): AdmittedRun => ({ run_id: runId, dag_id: 'a', dag_hash: 'hash_a' });

  it('takes no lock when nothing is to be queued', async () => {
    const { locks, calls } = fakeLocks({}, {});
    const admitted = await new Admission(warnings().log, locks).admit(c, [run('r1')], dags, []);
    expect(admitted).to.deep.equal([]);
    expect(calls).to.deep.equal([]);
  });

  it('keeps every task of a DAG without limits, heaviest first, then by run age', async () => {
    const { locks, calls } = fakeLocks({}, {});
    const admitted = await new Admission(warnings().log, locks).admit(c, [run('old'), run('new')], dags, [
      q('new', 'heavy'),
      q('old', 'light'),
      q('old', 'heavy'),
      q('new', 'mid'),
    ]);
    expect(admitted).to.deep.equal([
      q('old', 'heavy'),
      q('new', 'heavy'),
      q('new', 'mid'),
      q('old', 'light'),
    ]);
    expect(calls).to.deep.equal(['dags:a', 'pools:']);
  });

  it("gives a DAG's free task slots to its heaviest ready tasks", async () => {
    const { locks } = fakeLocks({ a: 2 }, {});
    const admitted = await new Admission(warnings().log, locks).admit(c, [run('r1')], dags, [
      q('r1', 'light'),
      q('r1', 'mid'),
      q('r1', 'heavy'),
    ]);
    expect(admitted).to.deep.equal([q('r1', 'heavy'), q('r1', 'mid')]);
  });

  it('queues nothing of a DAG with no free task slot', async () => {
    const { locks } = fakeLocks({ a: 0 }, {});
    const admitted = await new Admission(warnings().log, locks).admit(c, [run('r1')], dags, [
      q('r1', 'heavy'),
    ]);
    expect(admitted).to.deep.equal([]);
  });

  it('fills a pool by weight, letting a lighter task that fits go ahead of one that does not', async () => {
    const pooled: SerializedDag = serialized(
      [
        task('wide', [], { priorityWeight: 10, pool: 'gpu', poolSlots: 3 }),
        task('narrow', [], { priorityWeight: 5, pool: 'gpu', poolSlots: 1 }),
        task('other', [], { priorityWeight: 1, pool: 'gpu', poolSlots: 1 }),
        task('late', [], { priorityWeight: 0, pool: 'gpu', poolSlots: 1 }),
        task('free', [], { priorityWeight: 0 }),
      ],
      'p',
    );
    const { locks, calls } = fakeLocks({}, { gpu: { slots: 4, free: 2 } });
    const admitted = await new Admission(warnings().log, locks).admit(
      c,
      [{ run_id: 'r1', dag_id: 'p', dag_hash: 'hash_p' }],
      new Map([['hash_p', pooled]]),
      [q('r1', 'free'), q('r1', 'late'), q('r1', 'other'), q('r1', 'narrow'), q('r1', 'wide')],
    );
    expect(admitted).to.deep.equal([q('r1', 'narrow'), q('r1', 'other'), q('r1', 'free')]);
    // DAG rows before pool rows, always: two schedulers never deadlock.
    expect(calls).to.deep.equal(['dags:p', 'pools:gpu']);
  });

  it('keeps waiting a task whose pool is missing or too small, warning once a minute per pool', async () => {
    const pooled: SerializedDag = serialized(
      [task('lost', [], { pool: 'nowhere' }), task('big', [], { pool: 'small', poolSlots: 3 })],
      'p',
    );
    const { locks } = fakeLocks({}, { small: { slots: 2, free: 2 } });
    const { log, messages } = warnings();
    let now = 1_000_000;
    const admission = new Admission(log, locks, () => now);
    const pass = () =>
      admission.admit(
        c,
        [
          { run_id: 'r1', dag_id: 'p', dag_hash: 'hash_p' },
          { run_id: 'r2', dag_id: 'p', dag_hash: 'hash_p' },
        ],
        new Map([['hash_p', pooled]]),
        [q('r1', 'lost'), q('r1', 'big'), q('r2', 'lost'), q('r2', 'big')],
      );
    expect(await pass()).to.deep.equal([]);
    expect(messages).to.deep.equal([
      'task waits for pool "nowhere", which does not exist: create it with `airtasks pools set nowhere <slots>`',
      'task needs more slots than pool "small" has; it waits until the pool is made bigger',
    ]);
    now += 59_000;
    expect(await pass()).to.deep.equal([]);
    expect(messages).to.have.length(2);
    now += 2_000;
    await pass();
    expect(messages).to.have.length(4);
  });
});
