import { expect } from 'chai';
import { dag } from '../../src/engine/dag/builder.js';
import { functionKey } from '../../src/engine/dag/functions.js';
import { defineOperator } from '../../src/engine/dag/define-operator.js';
import { DagValidationError } from '../../src/engine/dag/validate.js';
import { itemConf, triggeredRunId } from '../../src/engine/operators/trigger-dag.js';

describe('trigger tasks, callbacks and custom operators in the builder', () => {
  it('stores a literal list or a generator as JSON items, read once when the file is imported', () => {
    const d = dag('t');
    d.multiTrigger('list', { dagId: 'target', items: [1, { a: 2 }] });
    let reads = 0;
    d.multiTrigger('gen', {
      dagId: 'target',
      items: (function* () {
        reads++;
        yield 'x';
        yield 'y';
      })(),
    });
    const s = d.serialize();
    expect(s.tasks[0]!.operator).to.equal('multi_trigger');
    expect(s.tasks[0]!.args).to.deep.include({
      dagId: 'target',
      items: [1, { a: 2 }],
      waitForCompletion: false,
    });
    expect(s.tasks[1]!.args.items).to.deep.equal(['x', 'y']);
    d.serialize();
    expect(reads).to.equal(1);
  });

  it('keeps an items function in the DAG file and its source in the args', () => {
    const d = dag('t');
    const fn = () => [1, 2];
    d.multiTrigger('fn', { dagId: 'target', items: fn });
    expect(d.functions.get('fn')).to.equal(fn);
    expect(d.serialize().tasks[0]!.args.itemsSource).to.equal(fn.toString());
  });

  it('refuses a multi-trigger without items, and an invalid target id', () => {
    const d = dag('t');
    expect(() => d.multiTrigger('none', { dagId: 'target' } as never)).to.throw(
      DagValidationError,
      'task "none" in DAG "t": multiTrigger needs items: a list, a generator, or a function returning one (got nothing)',
    );
    expect(() => d.multiTrigger('null', { dagId: 'target', items: null as never })).to.throw(/\(got null\)/);
    expect(() => d.triggerDag('bad', { dagId: 'has space' })).to.throw(/target invalid DAG id/);
    expect(d.tasks.size).to.equal(0);
  });

  it('derives the same run id for the same parent run, task and item, and a short one for long ids', () => {
    expect(triggeredRunId('manual__1', 'fan', 3)).to.equal('manual__1__fan__3');
    const long = triggeredRunId('r'.repeat(245), 'fan', 3);
    expect(long).to.match(/^triggered__[0-9a-f]{32}__3$/);
    expect(triggeredRunId('r'.repeat(245), 'fan', 3)).to.equal(long);
    expect(triggeredRunId('r'.repeat(245), 'fan2', 3)).not.to.equal(long);
  });

  it('uses object items as the conf and wraps any other value as { item }', () => {
    expect(itemConf({ a: 1 })).to.deep.equal({ a: 1 });
    expect(itemConf(7)).to.deep.equal({ item: 7 });
    expect(itemConf([1])).to.deep.equal({ item: [1] });
    expect(itemConf(null)).to.deep.equal({ item: null });
  });

  it('serialises callbacks (task defaults and overrides, run callbacks) and keeps functions apart', () => {
    const onRunFailure = () => undefined;
    const onSuccess = () => undefined;
    const d = dag('cb', { defaults: { onFailure: 'echo failed', queue: 'ops' }, onRunFailure });
    d.bash('a', { command: 'true' });
    d.bash('b', { command: 'true', onFailure: 'echo b', onSuccess });
    const s = d.serialize();
    expect(s.tasks[0]!.callbacks).to.deep.equal({ onFailure: { bash: 'echo failed' } });
    expect(s.tasks[1]!.callbacks).to.deep.equal({
      onFailure: { bash: 'echo b' },
      onSuccess: { node: onSuccess.toString() },
    });
    expect(s.runCallbacks).to.deep.equal({ queue: 'ops', onRunFailure: { node: onRunFailure.toString() } });
    expect(d.functions.get(functionKey('b', 'onSuccess'))).to.equal(onSuccess);
    expect(d.functions.get(functionKey(null, 'onRunFailure'))).to.equal(onRunFailure);
    expect(d.functions.has('b')).to.equal(false);
  });

  it('defineOperator: splits arguments from task options and validates them at definition', () => {
    const check = defineOperator<{ url: string }, number>({
      name: 'check',
      validate: (a) => {
        if (!a.url) throw new Error('url is required');
      },
      run: () => 1,
    });
    const d = dag('ops');
    const up = d.bash('up', { command: 'true' });
    check(d, 'c', { url: 'http://x', retries: 2, upstream: up });
    const t = d.serialize().tasks.find((x) => x.taskId === 'c')!;
    expect(t).to.deep.include({ operator: 'check', retries: 2, upstream: ['up'], args: { url: 'http://x' } });
    expect(d.functions.has('c')).to.equal(true);
    expect(() => check(d, 'bad', { url: '' })).to.throw('task "bad" in DAG "ops" (check): url is required');
    expect(() => defineOperator({ name: 'bash', run: () => 1 })).to.throw(/built-in/);
    expect(() => defineOperator({ name: 'no space', run: () => 1 })).to.throw(/invalid operator name/);
  });
});
