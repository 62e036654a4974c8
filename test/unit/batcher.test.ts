import { expect } from 'chai';
import { Batcher } from '../../src/engine/worker/batcher.js';

describe('Batcher: calls made together become one statement', () => {
  it('runs calls made in one turn as one batch, and later calls as the next batches', async () => {
    const batches: number[][] = [];
    const b = new Batcher<number, number>(
      async (xs) => {
        batches.push(xs);
        await new Promise((r) => setTimeout(r, 5));
        return xs.map((x) => x * 10);
      },
      { maxInFlight: 1 },
    );
    const first = await Promise.all([1, 2, 3].map((x) => b.add(x)));
    expect(first).to.deep.equal([10, 20, 30]);
    const a = b.add(4);
    await new Promise((r) => setImmediate(r)); // 4 is in flight alone; 5 and 6 wait for it together
    const rest = await Promise.all([a, b.add(5), b.add(6)]);
    expect(rest).to.deep.equal([40, 50, 60]);
    expect(batches).to.deep.equal([[1, 2, 3], [4], [5, 6]]);
  });

  it('idle() resolves once every item added is settled, those added meanwhile included', async () => {
    const done: number[] = [];
    const b = new Batcher<number, null>(
      async (xs) => {
        await new Promise((r) => setTimeout(r, 5));
        done.push(...xs);
        return xs.map(() => null);
      },
      { maxInFlight: 1 },
    );
    await b.idle(); // nothing added: at once
    void b.add(1);
    await new Promise((r) => setImmediate(r)); // 1 in flight; 2 and 3 wait for it
    void b.add(2);
    void b.add(3);
    await b.idle();
    expect(done).to.deep.equal([1, 2, 3]);
  });

  it('runs a failed batch again item by item, so one bad item fails alone', async () => {
    const calls: number[][] = [];
    const b = new Batcher<number, number>(async (xs) => {
      calls.push(xs);
      if (xs.includes(2)) throw new Error('value 2 refused');
      return xs;
    });
    const out = await Promise.allSettled([1, 2, 3].map((x) => b.add(x)));
    expect(out.map((o) => o.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect((out[1] as PromiseRejectedResult).reason.message).to.equal('value 2 refused');
    expect(calls).to.deep.equal([[1, 2, 3], [1], [2], [3]]);
  });

  it('fails the whole batch at once on a lost connection (the callers retry)', async () => {
    let calls = 0;
    const b = new Batcher<number, number>(async () => {
      calls++;
      throw Object.assign(new Error('Connection terminated unexpectedly'), { code: '08006' });
    });
    const out = await Promise.allSettled([1, 2].map((x) => b.add(x)));
    expect(out.every((o) => o.status === 'rejected')).to.equal(true);
    expect(calls).to.equal(1);
  });
});
