/** Named statement parameters (store/params.ts): numbered once, in order, for the text and the values. */
import { expect } from 'chai';
import {
  columnArrays,
  rowsOf,
  shapedStatement,
  statementParams,
  value,
} from '../../src/engine/store/params.js';

describe('statement parameters', () => {
  const spec = {
    x: rowsOf<{ id: string; n: number }>('x', [
      ['id', 'text', (r) => r.id],
      ['n', 'int', (r) => r.n],
      ['from_state', 'text', () => 'queued'],
    ]),
    channel: value<string>(),
    logs: columnArrays(['text', 'timestamptz']),
    worker: value<string | null>(),
  };
  const p = statementParams(spec);

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

  it('sends a row parameter of exactly one row as scalars, kept a subquery', () => {
    const one = statementParams(spec, new Set(['x']));
    expect(one.sql.x).to.equal(
      '(SELECT * FROM (VALUES ($1::text, $2::int, $3::text)) AS v(id, n, from_state) OFFSET 0) AS x',
    );
    expect(one.sql.channel).to.equal('$4');
    expect(one.values({ x: [{ id: 'a', n: 1 }], channel: 'e', logs: [[], []], worker: 'w' })).to.deep.equal([
      'a',
      1,
      'queued',
      'e',
      [],
      [],
      'w',
    ]);
    expect(() => one.values({ x: [], channel: 'e', logs: [[], []], worker: 'w' })).to.throw(
      '0 rows for the one-row form of x',
    );
  });

  it('prepares one statement per shape: one-row forms where a keyed parameter has one row', () => {
    const texts: string[] = [];
    const s = shapedStatement('probe', spec, ['x'], (sql) => {
      texts.push(sql.x);
      return `SELECT * FROM ${sql.x}`;
    });
    const args = (n: number) => ({
      x: Array.from({ length: n }, (_, i) => ({ id: `t${i}`, n: i })),
      channel: 'e',
      logs: [[], []],
      worker: null,
    });
    const a = s(args(1));
    const b = s(args(3));
    const c = s(args(1));
    expect(a.statement.name).to.equal('airtasks_probe_one_x');
    expect(b.statement.name).to.equal('airtasks_probe');
    expect(c.statement).to.equal(a.statement);
    expect(a.values.slice(0, 3)).to.deep.equal(['t0', 0, 'queued']);
    expect(b.values[0]).to.deep.equal(['t0', 't1', 't2']);
    // Each shape's text is built once.
    expect(texts).to.have.length(2);
  });
});
