/** The builder's `map` option: its stored form, and the options it refuses when the DAG file is imported. */
import { expect } from 'chai';
import { dag } from '../../src/engine/dag/builder.js';
import { taskOf } from '../../src/engine/dag/versions.js';
import { DagValidationError } from '../../src/engine/dag/validate.js';

describe('builder: mapped tasks', () => {
  it('stores a literal list, an upstream task or a function, with maxItems 10,000 by default', () => {
    const d = dag('m');
    const src = d.node('src', { run: () => [1, 2] });
    d.bash('lit', { map: { over: [1, 'a', { b: 2 }] }, command: 'echo {{ item }}' });
    d.bash('up', { map: { over: src, maxActiveItems: 3 }, command: 'echo {{ item }}' });
    d.node('fn', { map: { over: () => [1], maxItems: 5 }, run: (ctx) => ctx.item });
    const s = d.serialize();
    const t = (id: string) => s.tasks.find((x) => x.taskId === id)!;
    expect(t('lit').map).to.deep.equal({ items: [1, 'a', { b: 2 }], maxItems: 10_000 });
    expect(t('up').map).to.deep.equal({ from: 'src', maxItems: 10_000, maxActiveItems: 3 });
    expect(t('up').upstream).to.deep.equal(['src']);
    expect(t('fn').map!.source).to.be.a('string');
    expect(t('fn').map!.maxItems).to.equal(5);
    expect(d.functions.has('fn#map')).to.equal(true);
    expect(t('src').map).to.equal(undefined);
    // An item runs with its mapped task's settings; other bracketed ids are no task.
    expect(taskOf(s, 'up[7]')!.taskId).to.equal('up');
    expect(taskOf(s, 'src[0]')).to.equal(undefined);
  });

  const refused: Array<[string, (d: ReturnType<typeof dag>) => void, RegExp]> = [
    ['no over', (d) => d.bash('x', { map: {} as never, command: 'true' }), /map needs \{ over/],
    ['a number', (d) => d.bash('x', { map: { over: 3 as never }, command: 'true' }), /map.over must be/],
    [
      'maxActiveItems 0',
      (d) => d.bash('x', { map: { over: [1], maxActiveItems: 0 }, command: 'true' }),
      /maxActiveItems must be an integer >= 1/,
    ],
    [
      'maxItems 0',
      (d) => d.bash('x', { map: { over: [1], maxItems: 0 }, command: 'true' }),
      /maxItems must be an integer from 1/,
    ],
    [
      'too many',
      (d) => d.bash('x', { map: { over: [1, 2, 3], maxItems: 2 }, command: 'true' }),
      /3 items, more than map.maxItems \(2\)/,
    ],
    [
      'a mapped branch',
      (d) => {
        const b = d.branch('x', { map: { over: [1] }, run: () => null });
        d.bash('y', { upstream: b, command: 'true' });
      },
      /a branch task cannot be mapped/,
    ],
  ];
  for (const [what, build, message] of refused) {
    it(`refuses ${what}`, () => {
      const d = dag('bad');
      let err: unknown;
      try {
        build(d);
        d.serialize();
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(DagValidationError);
      expect((err as Error).message).to.match(message);
    });
  }
});
