import { expect } from 'chai';
import { Dag, dag, isDag, TaskRef } from '../../src/engine/dag/builder.js';
import { dagsOfModule } from '../../src/engine/dag/dags-of-module.js';
import { DEFAULT_QUEUE } from '../../src/engine/dag/serialize.js';
import type { SerializedTask } from '../../src/core/dag-model.js';
import { DagValidationError } from '../../src/engine/dag/validate.js';

function taskOf(d: Dag<never> | Dag, id: string): SerializedTask {
  const t = d.serialize().tasks.find((x) => x.taskId === id);
  if (!t) throw new Error(`no task ${id}`);
  return t;
}

function edges(d: Dag<never> | Dag): string[] {
  return d
    .serialize()
    .tasks.flatMap((t) => t.upstream.map((u) => `${u}->${t.taskId}`))
    .sort();
}

describe('dag builder', () => {
  describe('dag()', () => {
    it('creates a DAG with the given id and options', () => {
      const d = dag('my_dag', { description: 'desc', tags: ['a', 'b'] });
      expect(d).to.be.instanceOf(Dag);
      expect(d.id).to.equal('my_dag');
      d.bash('t', { command: 'true' });
      const s = d.serialize('sub/my_dag.ts');
      expect(s.dagId).to.equal('my_dag');
      expect(s.description).to.equal('desc');
      expect(s.tags).to.deep.equal(['a', 'b']);
      expect(s.fileloc).to.equal('sub/my_dag.ts');
    });

    it('defaults description, tags and fileloc to empty', () => {
      const d = dag('plain');
      d.bash('t', { command: 'true' });
      const s = d.serialize();
      expect([s.description, s.tags, s.fileloc]).to.deep.equal(['', [], '']);
    });

    for (const id of ['', 'has space', '.dot', 'a/b']) {
      it(`rejects the DAG id ${JSON.stringify(id)}`, () => {
        expect(() => dag(id)).to.throw(DagValidationError, /invalid DAG id/);
      });
    }
  });

  describe('bash()', () => {
    it('builds a task with the documented defaults', () => {
      const d = dag('defaults');
      d.bash('t', { command: 'echo hi' });
      expect(taskOf(d, 't')).to.deep.equal({
        taskId: 't',
        operator: 'bash',
        upstream: [],
        queue: DEFAULT_QUEUE,
        retries: 0,
        retryDelayMs: 5000,
        retryExponentialBackoff: false,
        maxRetryDelayMs: 3_600_000,
        timeoutMs: null,
        triggerRule: 'all_success',
        priorityWeight: 1,
        args: { command: 'echo hi' },
      });
      expect(DEFAULT_QUEUE).to.equal('worker');
    });

    it('puts env and cwd into args only when given', () => {
      const d = dag('args');
      d.bash('with', { command: 'pwd', env: { A: '1' }, cwd: '/tmp' });
      d.bash('without', { command: 'pwd' });
      expect(taskOf(d, 'with').args).to.deep.equal({ command: 'pwd', env: { A: '1' }, cwd: '/tmp' });
      expect(taskOf(d, 'without').args).to.have.all.keys('command');
    });

    it('converts task options, durations included', () => {
      const d = dag('opts');
      d.bash('t', {
        command: 'x',
        queue: 'gpu',
        retries: 3,
        retryDelay: '2s',
        retryExponentialBackoff: true,
        maxRetryDelay: '5m',
        timeout: 1500,
        triggerRule: 'all_done',
        priorityWeight: 7,
      });
      const t = taskOf(d, 't');
      expect(t).to.include({
        queue: 'gpu',
        retries: 3,
        retryDelayMs: 2000,
        retryExponentialBackoff: true,
        maxRetryDelayMs: 300_000,
        timeoutMs: 1500,
        triggerRule: 'all_done',
        priorityWeight: 7,
      });
    });

    it('applies DAG defaults, which task options override', () => {
      const d = dag('defs', {
        defaults: { retries: 2, queue: 'q1', timeout: '1m', triggerRule: 'none_failed' },
      });
      d.bash('inherits', { command: 'x' });
      d.bash('overrides', { command: 'x', retries: 0, queue: 'q2', timeout: '2s', triggerRule: 'always' });
      expect(taskOf(d, 'inherits')).to.include({
        retries: 2,
        queue: 'q1',
        timeoutMs: 60_000,
        triggerRule: 'none_failed',
      });
      expect(taskOf(d, 'overrides')).to.include({
        retries: 0,
        queue: 'q2',
        timeoutMs: 2000,
        triggerRule: 'always',
      });
    });

    it('does not let an option set to undefined hide a DAG default', () => {
      const d = dag('undef', { defaults: { retries: 4, queue: 'q1' } });
      d.bash('t', { command: 'x', retries: undefined, queue: undefined });
      expect(taskOf(d, 't')).to.include({ retries: 4, queue: 'q1' });
    });

    for (const command of ['', '   ', '\n\t']) {
      it(`rejects the empty command ${JSON.stringify(command)}`, () => {
        expect(() => dag('e').bash('t', { command })).to.throw(
          DagValidationError,
          'bash needs a non-empty command',
        );
      });
    }

    it('rejects a command that is not a string', () => {
      expect(() => dag('e').bash('t', { command: 42 as unknown as string })).to.throw(DagValidationError);
    });

    it('rejects a bad duration, naming the option', () => {
      expect(() => dag('e').bash('t', { command: 'x', retryDelay: '5 minutes' as '5m' })).to.throw(
        TypeError,
        /retryDelay/,
      );
      expect(() => dag('e').bash('t', { command: 'x', timeout: -1 })).to.throw(TypeError, /timeout/);
    });

    it('rejects an invalid queue name, from options or defaults', () => {
      expect(() => dag('e').bash('t', { command: 'x', queue: 'no spaces' })).to.throw(
        DagValidationError,
        /queue/,
      );
      expect(() => dag('e', { defaults: { queue: '' } }).bash('t', { command: 'x' })).to.throw(
        DagValidationError,
      );
    });

    it('rejects an invalid or duplicate task id', () => {
      const d = dag('ids');
      expect(() => d.bash('bad id', { command: 'x' })).to.throw(DagValidationError, /invalid task id/);
      d.bash('a', { command: 'x' });
      expect(() => d.bash('a', { command: 'y' })).to.throw(
        DagValidationError,
        'duplicate task id "a" in DAG "ids"',
      );
      expect(() => d.node('a', { run: () => 1 })).to.throw(DagValidationError, 'duplicate task id "a"');
      expect(d.tasks.size).to.equal(1);
    });
  });

  describe('gpus', () => {
    it('is a task option of every kind; a docker task keeps it in its args', () => {
      const d = dag('g');
      d.bash('b', { command: 'x', gpus: 2 });
      d.node('n', { run: () => 1, gpus: ['0', 'GPU-6f2c1a3e-1111'] });
      d.task('c', 'my_operator', {}, { gpus: 'all' });
      d.docker('k', { image: 'alpine', gpus: 1 });
      d.bash('none', { command: 'x' });
      expect(taskOf(d, 'b').gpus).to.equal(2);
      expect(taskOf(d, 'n').gpus).to.deep.equal(['0', 'GPU-6f2c1a3e-1111']);
      expect(taskOf(d, 'c').gpus).to.equal('all');
      expect(taskOf(d, 'k')).to.not.have.property('gpus');
      expect(taskOf(d, 'k').args.gpus).to.equal(1);
      // A task that asks for none keeps the hash it had.
      expect(taskOf(d, 'none')).to.not.have.property('gpus');
    });

    it('rejects a request no worker could read, naming the task', () => {
      const bad: unknown[] = [-1, 1.5, 'two', ['gpu0'], [0], ['0', '0'], { count: 1 }];
      for (const gpus of bad) {
        expect(
          () => dag('g').bash('t', { command: 'x', gpus: gpus as number }),
          JSON.stringify(gpus),
        ).to.throw(DagValidationError, /task "t" in DAG "g": gpus/);
        expect(() => dag('g').docker('t', { image: 'alpine', gpus: gpus as number })).to.throw(
          DagValidationError,
          /gpus/,
        );
      }
      expect(() => dag('g').bash('t', { command: 'x', gpus: 0 })).to.not.throw();
    });
  });

  describe('node()', () => {
    it('keeps the function for the worker and its source in args', () => {
      const d = dag('nodes');
      const fn = () => 40 + 2;
      const ref = d.node('n', { run: fn, retries: 1 });
      expect(ref).to.be.instanceOf(TaskRef);
      expect(ref.id).to.equal('n');
      expect(d.functions.get('n')).to.equal(fn);
      const t = taskOf(d, 'n');
      expect(t.operator).to.equal('node');
      expect(t.retries).to.equal(1);
      expect(t.args).to.deep.equal({ source: fn.toString() });
    });

    it('serialises to plain JSON with no functions in it', () => {
      const d = dag('json');
      d.node('n', { run: async () => ({ ok: true }) });
      const s = d.serialize();
      expect(JSON.parse(JSON.stringify(s))).to.deep.equal(s);
    });

    it('rejects a missing run function', () => {
      expect(() => dag('e').node('n', { run: 'nope' as unknown as () => void })).to.throw(
        DagValidationError,
        'node needs a run function',
      );
    });

    it('types a reference by what run returns', () => {
      const d = dag('typed');
      const sync: TaskRef<number> = d.node('sync', { run: () => 1 });
      const asyncRef: TaskRef<string> = d.node('async', { run: async () => 'x' });
      const bash: TaskRef<string> = d.bash('b', { command: 'x' });
      expect([sync.id, asyncRef.id, bash.id]).to.deep.equal(['sync', 'async', 'b']);
    });
  });

  describe('dependencies', () => {
    it('accepts one reference or a list as upstream', () => {
      const d = dag('ups');
      const a = d.bash('a', { command: 'a' });
      const b = d.bash('b', { command: 'b', upstream: a });
      d.bash('c', { command: 'c', upstream: [b, a] });
      d.bash('d', { command: 'd', upstream: [] });
      expect(edges(d)).to.deep.equal(['a->b', 'a->c', 'b->c']);
    });

    it('lists upstreams sorted and without repeats', () => {
      const d = dag('sorted');
      const z = d.bash('z', { command: 'z' });
      const m = d.bash('m', { command: 'm' });
      const a = d.bash('a', { command: 'a' });
      const t = d.bash('t', { command: 't', upstream: [z, m] });
      t.setUpstream(a, z, [m, a]);
      expect(taskOf(d, 't').upstream).to.deep.equal(['a', 'm', 'z']);
    });

    it('setUpstream and setDownstream are mirror images and return the task for chaining', () => {
      const build = (useDownstream: boolean) => {
        const d = dag('mirror');
        const a = d.bash('a', { command: 'a' });
        const b = d.bash('b', { command: 'b' });
        const c = d.bash('c', { command: 'c' });
        const e = d.bash('e', { command: 'e' });
        if (useDownstream) {
          expect(a.setDownstream([b, c])).to.equal(a);
          expect(b.setDownstream(e).setDownstream(c)).to.equal(b);
          c.setDownstream(e);
        } else {
          expect(b.setUpstream(a)).to.equal(b);
          expect(c.setUpstream([a], b)).to.equal(c);
          e.setUpstream(b, c);
        }
        return edges(d);
      };
      expect(build(true)).to.deep.equal(['a->b', 'a->c', 'b->c', 'b->e', 'c->e']);
      expect(build(false)).to.deep.equal(build(true));
    });

    it('refuses a task of another DAG, naming both DAGs', () => {
      const one = dag('one');
      const two = dag('two');
      const a = one.bash('a', { command: 'a' });
      const b = two.bash('b', { command: 'b' });
      expect(() => b.setUpstream(a)).to.throw(DagValidationError, 'task "a" belongs to DAG "one", not "two"');
      expect(() => a.setDownstream(b)).to.throw(DagValidationError, /belongs to DAG "one", not "two"/);
      expect(() => two.bash('c', { command: 'c', upstream: a })).to.throw(
        DagValidationError,
        /belongs to DAG "one"/,
      );
      expect(taskOf(two, 'b').upstream).to.deep.equal([]);
    });

    // A call that throws must not leave a half-built task behind.
    it('does not register a task whose upstream was refused', () => {
      const one = dag('one');
      const two = dag('two');
      const a = one.bash('a', { command: 'a' });
      expect(() => two.bash('c', { command: 'c', upstream: a })).to.throw(DagValidationError);
      expect(two.tasks.has('c')).to.equal(false);
      expect(() => two.bash('c', { command: 'c' })).not.to.throw();
    });

    it('keeps neither the weight rule nor the functions of a task whose upstream was refused', () => {
      const foreign = dag('one').bash('a', { command: 'a' });
      const two = dag('two');
      const refused = { weightRule: 'downstream', onFailure: () => 1, upstream: foreign } as const;
      expect(() => two.node('c', { ...refused, run: () => 1 })).to.throw(DagValidationError);
      expect([...two.functions.keys()]).to.deep.equal([]);
      const c = two.bash('c', { command: 'c' });
      two.bash('d', { command: 'd', upstream: c });
      expect(taskOf(two, 'c').priorityWeight).to.equal(1);
    });

    it('serialize() reports a cycle made with setUpstream, with its path', () => {
      const d = dag('cyc');
      const a = d.bash('a', { command: 'a' });
      const b = d.bash('b', { command: 'b', upstream: a });
      const c = d.bash('c', { command: 'c', upstream: b });
      a.setUpstream(c);
      expect(() => d.serialize()).to.throw(
        DagValidationError,
        'DAG "cyc" is invalid: cycle: a -> b -> c -> a',
      );
    });

    it('serialize() reports a task that is its own upstream', () => {
      const d = dag('self');
      const a = d.bash('a', { command: 'a' });
      a.setUpstream(a);
      expect(() => d.serialize()).to.throw(DagValidationError, 'task "a" depends on itself');
    });

    it('serialize() refuses an empty DAG and invalid retries', () => {
      expect(() => dag('empty').serialize()).to.throw(DagValidationError, 'a DAG needs at least one task');
      const d = dag('neg');
      d.bash('t', { command: 'x', retries: -1 });
      expect(() => d.serialize()).to.throw(DagValidationError, 'retries must be an integer >= 0');
    });
  });

  describe('serialize()', () => {
    it('lists tasks in declaration order', () => {
      const d = dag('order');
      for (const id of ['zeta', 'alpha', 'mid']) d.bash(id, { command: id });
      expect(d.serialize().tasks.map((t) => t.taskId)).to.deep.equal(['zeta', 'alpha', 'mid']);
    });

    it('returns a fresh copy each time', () => {
      const d = dag('fresh');
      const a = d.bash('a', { command: 'a' });
      d.bash('b', { command: 'b', upstream: a });
      const first = d.serialize();
      first.tasks[1]!.upstream.push('zzz');
      first.tasks[1]!.retries = 99;
      const second = d.serialize();
      expect(second.tasks[1]!.upstream).to.deep.equal(['a']);
      expect(second.tasks[1]!.retries).to.equal(0);
    });

    it('reflects edges added after a previous serialize()', () => {
      const d = dag('later');
      const a = d.bash('a', { command: 'a' });
      const b = d.bash('b', { command: 'b' });
      expect(edges(d)).to.deep.equal([]);
      b.setUpstream(a);
      expect(edges(d)).to.deep.equal(['a->b']);
    });
  });

  describe('isDag', () => {
    it('recognises DAGs and nothing else', () => {
      expect(isDag(dag('x'))).to.equal(true);
      for (const v of [
        null,
        undefined,
        0,
        'dag',
        {},
        [],
        { id: 'x', tasks: new Map() },
        { 'airtasks.dag': true },
      ]) {
        expect(isDag(v), String(JSON.stringify(v))).to.equal(false);
      }
    });

    it('recognises a DAG made by another copy of the module (global symbol brand)', () => {
      expect(isDag({ [Symbol.for('airtasks.dag')]: true })).to.equal(true);
      expect(isDag({ [Symbol('airtasks.dag')]: true })).to.equal(false);
    });
  });

  describe('dagsOfModule', () => {
    it('finds default, named and array exports once each, in export order', () => {
      const a = dag('a');
      const b = dag('b');
      const c = dag('c');
      const found = dagsOfModule({
        default: a,
        b,
        list: [c, a, 'not a dag', 3],
        other: { nested: dag('n') },
        x: 1,
      });
      expect(found).to.deep.equal([a, b, c]);
    });

    it('returns nothing for a module without DAGs', () => {
      expect(dagsOfModule({})).to.deep.equal([]);
      expect(dagsOfModule({ default: () => dag('lazy'), list: [[dag('deep')]] })).to.deep.equal([]);
    });
  });
});
