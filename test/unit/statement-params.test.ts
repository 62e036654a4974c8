/** Named statement parameters (store/params.ts): numbered once, in order, for the text and the values. */
import { expect } from 'chai';
import { columnArrays, rowsOf, statementParams, value } from '../../src/engine/store/params.js';

describe('statement parameters', () => {
  const p = statementParams({
    x: rowsOf<{ id: string; n: number }>('x', [
      ['id', 'text', (r) => r.id],
      ['n', 'int', (r) => r.n],
      ['from_state', 'text', () => 'queued'],
    ]),
    channel: value<string>(),
    logs: columnArrays(['text', 'timestamptz']),
    worker: value<string | null>(),
  });

  it('numbers each parameter once, in the order given', () => {
    expect(p.sql).to.deep.equal({
      x: 'unnest($1::text[], $2::int[], $3::text[]) AS x(id, n, from_state)',
      channel: '$4',
      logs: 'unnest($5::text[], $6::timestamptz[])',
      worker: '$7',
    });
  });

  it('passes the values in the same order: one array per column, single values as they are', () => {
    const ts = new Date(0);
    expect(
      p.values({
        x: [
          { id: 'a', n: 1 },
          { id: 'b', n: 2 },
        ],
        channel: 'events',
        logs: [['line'], [ts]],
        worker: null,
      }),
    ).to.deep.equal([['a', 'b'], [1, 2], ['queued', 'queued'], 'events', ['line'], [ts], null]);
  });

  it('refuses column arrays that do not match the columns', () => {
    expect(() => p.values({ x: [], channel: 'e', logs: [[]], worker: null })).to.throw(
      '1 column arrays for an unnest of 2 columns',
    );
  });
});
