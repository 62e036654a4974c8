import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { dag } from '../../src/engine/dag/builder.js';
import { canonicalJson, dagHash } from '../../src/engine/dag/serialize.js';
import type { SerializedDag } from '../../src/core/dag-model.js';
import { serialized, task } from './fixtures.js';

/** Rebuilds every object in a value with its keys in reverse order. */
function reverseKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(reverseKeys) as T;
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .reverse()
        .map(([k, x]) => [k, reverseKeys(x)]),
    ) as T;
  }
  return v;
}

describe('canonicalJson', () => {
  it('sorts object keys at every depth', () => {
    expect(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } })).to.equal(
      '{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}',
    );
  });

  it('is the same for objects that differ only in key order', () => {
    const x = { dagId: 'x', tasks: [{ taskId: 'a', args: { env: { B: '1', A: '2' }, command: 'ls' } }] };
    expect(canonicalJson(reverseKeys(x))).to.equal(canonicalJson(x));
    expect(JSON.stringify(reverseKeys(x))).not.to.equal(JSON.stringify(x)); // the test input really differs
  });

  it('keeps array order', () => {
    expect(canonicalJson([3, 1, 2])).to.equal('[3,1,2]');
    expect(canonicalJson(['b', 'a'])).not.to.equal(canonicalJson(['a', 'b']));
  });

  it('encodes primitives and leaves out undefined properties like JSON.stringify', () => {
    expect(canonicalJson('a"b')).to.equal('"a\\"b"');
    expect(canonicalJson(1.5)).to.equal('1.5');
    expect(canonicalJson(null)).to.equal('null');
    expect(canonicalJson(true)).to.equal('true');
    expect(canonicalJson({ b: undefined, a: 1 })).to.equal('{"a":1}');
    expect(canonicalJson({ d: new Date('2024-01-02T03:04:05.000Z') })).to.equal(
      '{"d":"2024-01-02T03:04:05.000Z"}',
    );
  });

  it('round-trips to a deep-equal value', () => {
    const v = { z: [1, { y: 'ü✓', x: [] }], a: { '': 0, ' ': 1, A: 2, a: 3 } };
    expect(JSON.parse(canonicalJson(v))).to.deep.equal(v);
  });
});

describe('dagHash', () => {
  const base = (): SerializedDag => serialized([task('a'), task('b', ['a'])], 'h');

  it('is 32 lowercase hex characters', () => {
    expect(dagHash(base())).to.match(/^[0-9a-f]{32}$/);
  });

  it('is the first 32 hex digits of the SHA-256 of the canonical JSON (stable across versions)', () => {
    const d: SerializedDag = { dagId: 'g', description: '', fileloc: 'g.ts', tags: ['x'], tasks: [] };
    // Written out by hand: keys in sorted order.
    const canonical = '{"dagId":"g","description":"","fileloc":"g.ts","tags":["x"],"tasks":[]}';
    expect(canonicalJson(d)).to.equal(canonical);
    expect(dagHash(d)).to.equal(createHash('sha256').update(canonical).digest('hex').slice(0, 32));
  });

  it('is equal for equal DAGs and does not depend on key order', () => {
    expect(dagHash(base())).to.equal(dagHash(base()));
    expect(dagHash(reverseKeys(base()))).to.equal(dagHash(base()));
  });

  const changes: Array<[string, (d: SerializedDag) => void]> = [
    ['description', (d) => (d.description = 'new')],
    ['fileloc', (d) => (d.fileloc = 'other.ts')],
    ['tags', (d) => d.tags.push('t')],
    ['a task retries', (d) => (d.tasks[1]!.retries = 2)],
    ['a task command', (d) => (d.tasks[0]!.args = { command: 'echo changed' })],
    ['an edge', (d) => (d.tasks[1]!.upstream = [])],
    ['a trigger rule', (d) => (d.tasks[1]!.triggerRule = 'all_done')],
    ['a queue', (d) => (d.tasks[0]!.queue = 'gpu')],
    ['the task list', (d) => d.tasks.push(task('c'))],
  ];
  for (const [what, change] of changes) {
    it(`changes when ${what} changes`, () => {
      const d = base();
      change(d);
      expect(dagHash(d)).not.to.equal(dagHash(base()));
    });
  }

  describe('built with the authoring API', () => {
    const build = (run: () => unknown, retries = 0) => {
      const d = dag('fn_dag');
      const a = d.bash('a', { command: 'echo hi' });
      d.node('n', { upstream: a, run, retries });
      return d.serialize('fn_dag.ts');
    };

    it('is the same for two separately built, identical DAGs', () => {
      expect(dagHash(build(() => 1))).to.equal(dagHash(build(() => 1)));
    });

    it("changes when a node task's function source changes", () => {
      expect(dagHash(build(() => 1))).not.to.equal(dagHash(build(() => 2)));
      expect(dagHash(build(() => 'a'.repeat(2)))).not.to.equal(dagHash(build(() => 'a'.repeat(3))));
    });

    it('changes when a task option changes', () => {
      expect(dagHash(build(() => 1, 1))).not.to.equal(dagHash(build(() => 1, 0)));
    });

    it('is the same whichever order upstreams are given in', () => {
      const mk = (flip: boolean) => {
        const d = dag('order');
        const x = d.bash('x', { command: 'x' });
        const y = d.bash('y', { command: 'y' });
        d.bash('z', { command: 'z', upstream: flip ? [y, x] : [x, y] });
        return dagHash(d.serialize());
      };
      expect(mk(true)).to.equal(mk(false));
    });
  });
});
