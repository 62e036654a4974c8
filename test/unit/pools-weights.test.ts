/** Pool options and priority weight rules as the DAG builder serialises them. */
import { expect } from 'chai';
import { dag, type Dag } from '../../src/engine/dag/builder.js';
import { dagHash } from '../../src/engine/dag/serialize.js';
import type { SerializedTask } from '../../src/core/dag-model.js';
import { DagValidationError } from '../../src/engine/dag/validate.js';

const weights = (d: Dag<never> | Dag) =>
  Object.fromEntries(d.serialize().tasks.map((t: SerializedTask) => [t.taskId, t.priorityWeight]));

/** a -> b -> d, a -> c -> d, plus a lone task e; weights 1..5 in that order. */
function diamond(rule?: 'absolute' | 'downstream' | 'upstream') {
  const d = dag('diamond', rule ? { defaults: { weightRule: rule } } : {});
  const a = d.bash('a', { command: 'true', priorityWeight: 1 });
  const b = d.bash('b', { command: 'true', priorityWeight: 2, upstream: a });
  const c = d.bash('c', { command: 'true', priorityWeight: 3, upstream: a });
  d.bash('d', { command: 'true', priorityWeight: 4, upstream: [b, c] });
  d.bash('e', { command: 'true', priorityWeight: 5 });
  return d;
}

describe('pools and weight rules in the builder', () => {
  it('keeps a task without a pool free of pool keys, and defaults poolSlots to 1', () => {
    const d = dag('p');
    d.bash('plain', { command: 'true' });
    d.bash('pooled', { command: 'true', pool: 'gpu' });
    d.bash('wide', { command: 'true', pool: 'gpu', poolSlots: 3 });
    const [plain, pooled, wide] = d.serialize().tasks;
    expect(plain).to.not.have.any.keys('pool', 'poolSlots');
    expect(pooled).to.include({ pool: 'gpu', poolSlots: 1 });
    expect(wide).to.include({ pool: 'gpu', poolSlots: 3 });
  });

  it('takes pool and weightRule from the DAG defaults', () => {
    const d = dag('p', { defaults: { pool: 'shared', weightRule: 'downstream' } });
    const a = d.bash('a', { command: 'true' });
    d.bash('b', { command: 'true', upstream: a });
    expect(d.serialize().tasks.map((t) => t.pool)).to.deep.equal(['shared', 'shared']);
    expect(weights(d)).to.deep.equal({ a: 2, b: 1 });
  });

  it('refuses bad pool options where the task is declared', () => {
    const d = dag('p');
    expect(() => d.bash('a', { command: 'true', pool: 'bad name' })).to.throw(DagValidationError, /pool/);
    expect(() => d.bash('b', { command: 'true', poolSlots: 2 })).to.throw(DagValidationError, /needs a pool/);
    expect(() => d.bash('c', { command: 'true', weightRule: 'sideways' as never })).to.throw(
      DagValidationError,
      /unknown weightRule "sideways"/,
    );
    for (const poolSlots of [0, -1, 1.5]) {
      const x = dag(`slots_${String(poolSlots).replace(/\W/g, '_')}`);
      x.bash('t', { command: 'true', pool: 'p', poolSlots });
      expect(() => x.serialize(), String(poolSlots)).to.throw(
        DagValidationError,
        /poolSlots must be an integer >= 1/,
      );
    }
    const w = dag('weight');
    w.bash('t', { command: 'true', priorityWeight: 1.5 });
    expect(() => w.serialize()).to.throw(DagValidationError, /priorityWeight must be an integer/);
  });

  it('computes absolute, downstream and upstream weights over the graph (each task counted once)', () => {
    expect(weights(diamond())).to.deep.equal({ a: 1, b: 2, c: 3, d: 4, e: 5 });
    expect(weights(diamond('absolute'))).to.deep.equal({ a: 1, b: 2, c: 3, d: 4, e: 5 });
    // a: 1 + b 2 + c 3 + d 4 (d reached twice, counted once).
    expect(weights(diamond('downstream'))).to.deep.equal({ a: 10, b: 6, c: 7, d: 4, e: 5 });
    expect(weights(diamond('upstream'))).to.deep.equal({ a: 1, b: 3, c: 4, d: 10, e: 5 });
  });

  it('leaves the hash of a DAG that uses none of these options unchanged by them', () => {
    const before = diamond().serialize();
    const withAbsolute = diamond('absolute').serialize();
    // 'absolute' is the default: the same serialised tasks, so the same hash.
    expect(dagHash(withAbsolute)).to.equal(dagHash(before));
  });
});
