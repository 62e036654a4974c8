import { expect } from 'chai';
import type { Queryable } from '../../src/engine/store/db.js';
import { VersionCache } from '../../src/engine/dag/versions.js';

describe('VersionCache', () => {
  it('reads a version once for all the tasks that ask at the same time, then from memory', async () => {
    let reads = 0;
    const q: Queryable = {
      query: (async () => {
        reads++;
        await new Promise((r) => setTimeout(r, 10));
        return { rows: [{ serialized: { dagId: 'd', tasks: [] } }] };
      }) as unknown as Queryable['query'],
    };
    const cache = new VersionCache(q);
    const got = await Promise.all(Array.from({ length: 16 }, () => cache.get('h')));
    expect(reads).to.equal(1);
    expect(new Set(got).size).to.equal(1);
    await cache.get('h');
    expect(reads).to.equal(1);
  });

  it('asks again after a failed read', async () => {
    let reads = 0;
    const q: Queryable = {
      query: (async () => {
        reads++;
        if (reads === 1) throw new Error('connection lost');
        return { rows: [{ serialized: { dagId: 'd', tasks: [] } }] };
      }) as unknown as Queryable['query'],
    };
    const cache = new VersionCache(q);
    const [a, b] = await Promise.allSettled([cache.get('h'), cache.get('h')]);
    expect([a.status, b.status]).to.deep.equal(['rejected', 'rejected']);
    expect((await cache.get('h')).dagId).to.equal('d');
    expect(reads).to.equal(2);
  });
});
