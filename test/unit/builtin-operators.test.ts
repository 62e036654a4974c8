/** BUILTIN_OPERATORS: what the builder writes, the worker's registry runs and defineOperator refuses. */
import { expect } from 'chai';
import { BUILTIN_OPERATORS } from '../../src/core/dag-model.js';
import { BRANCH_OPERATOR } from '../../src/engine/dag/branch.js';
import { dag } from '../../src/engine/dag/builder.js';
import { defineOperator } from '../../src/engine/dag/define-operator.js';
import { DagValidationError } from '../../src/engine/dag/validate.js';
import { getOperator } from '../../src/engine/operators/registry.js';

describe('built-in operators', () => {
  it('lists every operator the builder writes', () => {
    const d = dag('all_builtins');
    const a = d.bash('a', { command: 'true' });
    const b = d.node('b', { upstream: a, run: () => 1 });
    const c = d.branch('c', { upstream: b, run: () => null });
    d.docker('e', { upstream: c, image: 'alpine' });
    d.triggerDag('f', { upstream: c, dagId: 'other' });
    d.multiTrigger('g', { upstream: c, dagId: 'other', items: [1] });
    const written = d.serialize().tasks.map((t) => t.operator);
    expect([...written].sort()).to.deep.equal([...BUILTIN_OPERATORS].sort());
    expect(BUILTIN_OPERATORS).to.include(BRANCH_OPERATOR);
  });

  it('has an implementation of each in the registry, under its name', () => {
    for (const name of BUILTIN_OPERATORS) expect(getOperator(name)?.name, name).to.equal(name);
  });

  // 'branch' was missing from define-operator's own list: a custom 'branch' was accepted, and the
  // worker would have run the built-in in its place.
  for (const name of ['branch', ...BUILTIN_OPERATORS]) {
    it(`refuses a custom operator named "${name}"`, () => {
      expect(() => defineOperator({ name, run: () => 1 })).to.throw(
        DagValidationError,
        `operator name "${name}" is taken by a built-in operator`,
      );
    });
  }
});
