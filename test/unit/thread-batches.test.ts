/**
 * A thread's side of the pool's batches, with the pool's moves (another thread's, on shared memory) made by
 * the test between the thread's steps: a thread never holds two calls at once, it tells the pool of a batch
 * once, and a batch the pool gives the moment the last one ends stays the pool's.
 */
import { expect } from 'chai';
import { ThreadBatches } from '../../src/engine/operators/thread-batches.js';
import {
  DONE,
  QUEUED,
  REVOKED,
  SLOT_IDLE,
  SLOT_POOL,
  STATE,
  type CallBatch,
  type FromThread,
} from '../../src/engine/operators/thread-protocol.js';
import type { UserCall } from '../../src/engine/operators/user-code.js';

const turn = () => new Promise((r) => setImmediate(r));

describe('a thread of the process host runs its batches', () => {
  let ints: Int32Array;
  let posted: FromThread[];
  let ran: number[];
  let running: number;
  /** What the pool does while call `id` runs (before its end is reported), and just after it is reported. */
  let during: Map<number, () => void>;
  let after: Map<number, () => void>;
  let batches: ThreadBatches;

  beforeEach(() => {
    ints = new Int32Array(new SharedArrayBuffer(16));
    posted = [];
    ran = [];
    running = 0;
    during = new Map();
    after = new Map();
    batches = new ThreadBatches(ints, {
      async run(_call, id, idle) {
        expect(++running, 'calls running at once').to.equal(1);
        ran.push(id);
        await turn();
        during.get(id)?.();
        running--;
        const wasIdle = idle();
        after.get(id)?.();
        return wasIdle;
      },
      post: (m) => posted.push(m),
    });
  });

  const batchOf = (ids: number[]): CallBatch => ({
    calls: ids.map((id) => ({ id, call: {} as UserCall })),
    flags: new Int32Array(new SharedArrayBuffer(4 * ids.length)),
    began: new Float64Array(new SharedArrayBuffer(8 * ids.length)),
  });
  /** As the pool does: takes the idle thread (IDLE -> POOL), then sends it the batch. */
  function take(): boolean {
    return Atomics.compareExchange(ints, STATE, SLOT_IDLE, SLOT_POOL) === SLOT_IDLE;
  }
  const idles = () => posted.filter((m) => m.t === 'idle').length;

  it("runs a batch's calls in order, one at a time, and tells the pool once, after the last", async () => {
    expect(take()).to.equal(true);
    const b = batchOf([1, 2, 3]);
    batches.give(b);
    for (let i = 0; i < 10; i++) await turn();
    expect(ran).to.deep.equal([1, 2, 3]);
    expect(Atomics.load(ints, STATE)).to.equal(SLOT_IDLE);
    // Each call's end is in memory the pool reads; a message would wake the pool's thread for each.
    expect([...b.flags]).to.deep.equal([DONE, DONE, DONE]);
    expect(posted).to.deep.equal([{ t: 'idle' }]);
  });

  it('is idle once the calls left in its batch are taken back', async () => {
    expect(take()).to.equal(true);
    const b = batchOf([1, 2, 3]);
    during.set(1, () => {
      for (const i of [1, 2]) expect(Atomics.compareExchange(b.flags, i, QUEUED, REVOKED)).to.equal(QUEUED);
    });
    batches.give(b);
    for (let i = 0; i < 10; i++) await turn();
    expect(ran).to.deep.equal([1]);
    expect(Atomics.load(ints, STATE)).to.equal(SLOT_IDLE);
    expect(idles()).to.equal(1);
  });

  it('leaves the pool a batch it gave as the last call ended, before the next call can come', async () => {
    // The pool sees the thread IDLE as soon as its last call is reported, and takes it for the next batch
    // while the thread is still finishing the one before: the thread must not make itself IDLE again (a
    // worker's call would then run beside the batch's, and the batch's end would never be said).
    expect(take()).to.equal(true);
    let taken = false;
    after.set(1, () => (taken = take()));
    batches.give(batchOf([1]));
    for (let i = 0; i < 10; i++) await turn();
    expect(taken).to.equal(true);
    expect(Atomics.load(ints, STATE), "the pool's, for the next batch").to.equal(SLOT_POOL);
    const before = idles();
    batches.give(batchOf([2]));
    for (let i = 0; i < 10; i++) await turn();
    expect(ran).to.deep.equal([1, 2]);
    expect(Atomics.load(ints, STATE)).to.equal(SLOT_IDLE);
    expect(idles(), 'idle said after the second batch').to.equal(before + 1);
  });
});
