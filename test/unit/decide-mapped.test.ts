/** decide() for mapped tasks: items made and queued (within maxActiveItems), the set judged downstream. */
import { expect } from 'chai';
import type { TaskState } from '../../src/core/states.js';
import { decide, type TaskStateBrief } from '../../src/engine/scheduler/decide.js';
import { serialized, task } from './fixtures.js';

const NOW = new Date('2024-05-01T12:00:00.000Z');
const mapped = (id: string, up: string[], maxActiveItems?: number) =>
  task(id, up, { map: { from: up[0], maxItems: 10_000, ...(maxActiveItems ? { maxActiveItems } : {}) } });

function briefs(
  parent: { state: TaskState; n?: number },
  items: TaskState[],
  extra: Record<string, TaskState> = {},
) {
  const m = new Map<string, TaskStateBrief>([
    ['src', { state: 'success', nextRetryAt: null }],
    ['m', { state: parent.state, nextRetryAt: null, itemCount: parent.n ?? null }],
  ]);
  items.forEach((s, i) => m.set(`m[${i}]`, { state: s, nextRetryAt: null }));
  for (const [id, s] of Object.entries(extra)) m.set(id, { state: s, nextRetryAt: null });
  return m;
}

describe('decide: mapped tasks', () => {
  const d = serialized([
    task('src'),
    mapped('m', ['src']),
    task('all', ['m']),
    task('done', ['m'], { triggerRule: 'all_done' }),
  ]);

  it('queues the task itself (its expansion) when its trigger rule says run', () => {
    const out = decide(d, briefs({ state: 'none' }, []), NOW);
    expect(out.queue).to.deep.equal([{ taskId: 'm', from: 'none' }]);
    expect(out.expand).to.deep.equal([]);
  });

  it('makes and queues the items of a stored list, and downstream waits', () => {
    const out = decide(d, briefs({ state: 'success', n: 3 }, []), NOW);
    expect(out.expand).to.deep.equal(['m']);
    expect(out.queue.map((q) => q.taskId)).to.deep.equal(['m[0]', 'm[1]', 'm[2]']);
    expect(out.settle).to.deep.equal([]);
    expect(out.runState).to.equal(null);
  });

  it('queues at most maxActiveItems items at once, counting those queued or running', () => {
    const dl = serialized([task('src'), mapped('m', ['src'], 2)]);
    const out = decide(dl, briefs({ state: 'success', n: 4 }, ['running', 'none', 'none', 'none']), NOW);
    expect(out.queue.map((q) => q.taskId)).to.deep.equal(['m[1]']);
  });

  it('judges downstream by the set: one failed item fails all_success, all_done runs', () => {
    const out = decide(d, briefs({ state: 'success', n: 3 }, ['success', 'failed', 'success']), NOW);
    expect(out.settle).to.deep.equal([{ taskId: 'all', state: 'upstream_failed' }]);
    expect(out.queue).to.deep.equal([{ taskId: 'done', from: 'none' }]);
  });

  it('waits while one item is unfinished', () => {
    const out = decide(d, briefs({ state: 'success', n: 2 }, ['success', 'up_for_retry']), NOW);
    expect(out.queue.map((q) => q.taskId)).to.deep.equal(['m[1]']);
    expect(out.settle).to.deep.equal([]);
  });

  it('skips the task on an empty list, and its downstream by trigger rules', () => {
    const out = decide(d, briefs({ state: 'success', n: 0 }, []), NOW);
    expect(out.expand).to.deep.equal(['m']);
    expect(out.settle).to.deep.equal([{ taskId: 'all', state: 'skipped' }]);
    expect(out.queue).to.deep.equal([{ taskId: 'done', from: 'none' }]);
  });

  it('ends the run failed when a mapped leaf has a failed item', () => {
    const dl = serialized([task('src'), mapped('m', ['src'])]);
    const out = decide(dl, briefs({ state: 'success', n: 2 }, ['success', 'failed']), NOW);
    expect(out.runState).to.equal('failed');
    const ok = decide(dl, briefs({ state: 'success', n: 2 }, ['success', 'success']), NOW);
    expect(ok.runState).to.equal('success');
  });
});
