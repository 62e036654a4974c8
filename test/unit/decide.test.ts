import { expect } from 'chai';
import { TRIGGER_RULES, type SerializedTask, type TriggerRule } from '../../src/core/dag-model.js';
import { decide, evaluate, nextRetry, type Verdict } from '../../src/engine/scheduler/decide.js';
import { serialized, states, task } from './fixtures.js';

const NOW = new Date('2024-05-01T12:00:00.000Z');
const at = (deltaMs: number) => new Date(NOW.getTime() + deltaMs);

/** Upstream counts from (success, failed or upstream_failed, skipped, not finished). */
function counts(success: number, failed: number, skipped: number, pending: number) {
  return {
    total: success + failed + skipped + pending,
    success,
    failed,
    skipped,
    done: success + failed + skipped,
  };
}

type Row = [success: number, failed: number, skipped: number, pending: number, verdict: Verdict];

const TABLE: Record<TriggerRule, Row[]> = {
  all_success: [
    [0, 0, 0, 0, 'run'],
    [2, 0, 0, 0, 'run'],
    [1, 0, 0, 1, 'wait'],
    [0, 0, 0, 2, 'wait'],
    [1, 1, 0, 1, 'upstream_failed'], // does not wait for the rest
    [1, 0, 1, 1, 'skipped'],
    [0, 1, 1, 0, 'upstream_failed'], // a failure outranks a skip
  ],
  all_failed: [
    [0, 2, 0, 0, 'run'],
    [0, 1, 0, 1, 'wait'],
    [1, 1, 0, 0, 'skipped'],
    [1, 0, 0, 1, 'skipped'],
    [0, 1, 1, 1, 'skipped'],
  ],
  all_done: [
    [1, 1, 1, 0, 'run'],
    [0, 0, 3, 0, 'run'],
    [0, 2, 0, 0, 'run'],
    [1, 0, 0, 1, 'wait'],
    [0, 0, 0, 2, 'wait'],
  ],
  one_success: [
    [1, 0, 0, 3, 'run'], // does not wait for the rest
    [1, 2, 1, 0, 'run'],
    [0, 1, 0, 1, 'wait'],
    [0, 0, 1, 1, 'wait'],
    [0, 1, 1, 0, 'upstream_failed'],
    [0, 2, 0, 0, 'upstream_failed'],
    [0, 0, 2, 0, 'skipped'],
  ],
  one_failed: [
    [0, 1, 0, 3, 'run'], // does not wait for the rest
    [2, 1, 1, 0, 'run'],
    [2, 0, 0, 1, 'wait'],
    [2, 0, 1, 0, 'skipped'],
    [0, 0, 2, 0, 'skipped'],
  ],
  none_failed: [
    [1, 0, 1, 0, 'run'],
    [0, 0, 2, 0, 'run'],
    [2, 0, 0, 0, 'run'],
    [1, 0, 0, 1, 'wait'],
    [1, 1, 0, 1, 'upstream_failed'],
  ],
  none_failed_min_one_success: [
    [1, 0, 1, 0, 'run'],
    [2, 0, 0, 0, 'run'],
    [0, 0, 0, 0, 'run'],
    [1, 0, 0, 1, 'wait'],
    [0, 0, 1, 1, 'wait'],
    [0, 0, 2, 0, 'skipped'],
    [0, 1, 0, 1, 'upstream_failed'],
    [1, 1, 1, 0, 'upstream_failed'],
  ],
  none_skipped: [
    [1, 1, 0, 0, 'run'],
    [0, 2, 0, 0, 'run'],
    [1, 0, 0, 1, 'wait'],
    [1, 0, 1, 1, 'skipped'], // does not wait for the rest
  ],
  always: [
    [0, 0, 0, 3, 'run'],
    [0, 3, 0, 0, 'run'],
    [0, 0, 3, 0, 'run'],
  ],
};

describe('evaluate (trigger rules)', () => {
  it('the table covers every trigger rule', () => {
    expect(Object.keys(TABLE).sort()).to.deep.equal([...TRIGGER_RULES].sort());
  });

  for (const rule of TRIGGER_RULES) {
    describe(rule, () => {
      for (const [s, f, k, p, verdict] of TABLE[rule]) {
        it(`success=${s} failed=${f} skipped=${k} unfinished=${p} -> ${verdict}`, () => {
          expect(evaluate(rule, counts(s, f, k, p))).to.equal(verdict);
        });
      }
    });
  }
});

describe('decide', () => {
  describe('a fresh run', () => {
    it('queues only the tasks without upstreams, in topological order', () => {
      const d = serialized([task('c', ['a', 'b']), task('b'), task('a'), task('d', ['c'])]);
      const out = decide(d, states({}), NOW);
      expect(out.queue.map((q) => q.taskId).sort()).to.deep.equal(['a', 'b']);
      expect(out.queue.every((q) => q.from === 'none')).to.equal(true);
      expect(out.settle).to.deep.equal([]);
      expect(out.runState).to.equal(null);
    });

    it('treats a task missing from the states map as never started, and ignores unknown task ids', () => {
      const d = serialized([task('a'), task('b', ['a'])]);
      const out = decide(d, states({ a: 'success', ghost: 'failed' }), NOW);
      expect(out.queue).to.deep.equal([{ taskId: 'b', from: 'none' }]);
      expect(out.runState).to.equal(null);
    });

    // Airflow's TriggerRuleDep passes any task that has no upstream tasks, whatever its rule.
    for (const rule of TRIGGER_RULES) {
      it(`queues a task without upstreams whose rule is ${rule}`, () => {
        const d = serialized([task('root', [], { triggerRule: rule })]);
        const out = decide(d, states({}), NOW);
        expect(out.queue).to.deep.equal([{ taskId: 'root', from: 'none' }]);
        expect(out.settle).to.deep.equal([]);
      });
    }
  });

  it('does not queue tasks that are already queued, running or finished', () => {
    const d = serialized([task('q'), task('r'), task('s'), task('f'), task('k'), task('u')]);
    const st = states({
      q: 'queued',
      r: 'running',
      s: 'success',
      f: 'failed',
      k: 'skipped',
      u: 'upstream_failed',
    });
    const out = decide(d, st, NOW);
    expect(out.queue).to.deep.equal([]);
    expect(out.settle).to.deep.equal([]);
  });

  it('queues a task once all of its upstreams succeeded, and not before', () => {
    const d = serialized([task('a'), task('b'), task('c', ['a', 'b'])]);
    expect(decide(d, states({ a: 'success', b: 'running' }), NOW).queue).to.deep.equal([]);
    expect(decide(d, states({ a: 'success', b: 'success' }), NOW).queue).to.deep.equal([
      { taskId: 'c', from: 'none' },
    ]);
  });

  it('does not change the states it is given', () => {
    const d = serialized([task('a'), task('b', ['a']), task('c', ['b'])]);
    const st = states({ a: 'failed' });
    const before = JSON.stringify([...st]);
    decide(d, st, NOW);
    expect(JSON.stringify([...st])).to.equal(before);
  });

  describe('propagation in one pass', () => {
    it('cascades upstream_failed down a chain and fails the run', () => {
      const d = serialized([task('a'), task('b', ['a']), task('c', ['b']), task('d', ['c'])]);
      const out = decide(d, states({ a: 'failed' }), NOW);
      expect(out.settle).to.deep.equal([
        { taskId: 'b', state: 'upstream_failed' },
        { taskId: 'c', state: 'upstream_failed' },
        { taskId: 'd', state: 'upstream_failed' },
      ]);
      expect(out.queue).to.deep.equal([]);
      expect(out.runState).to.equal('failed');
    });

    it('cascades skipped down a chain, and a run whose leaves are skipped succeeds', () => {
      const d = serialized([task('a'), task('b', ['a']), task('c', ['b'])]);
      const out = decide(d, states({ a: 'skipped' }), NOW);
      expect(out.settle).to.deep.equal([
        { taskId: 'b', state: 'skipped' },
        { taskId: 'c', state: 'skipped' },
      ]);
      expect(out.runState).to.equal('success');
    });

    it('settles a join as soon as one branch failed, while the other branch still runs', () => {
      const d = serialized([task('a'), task('b'), task('join', ['a', 'b']), task('after', ['join'])]);
      const out = decide(d, states({ a: 'failed', b: 'running' }), NOW);
      expect(out.settle).to.deep.equal([
        { taskId: 'join', state: 'upstream_failed' },
        { taskId: 'after', state: 'upstream_failed' },
      ]);
      expect(out.runState, 'b has not finished').to.equal(null);
    });

    it('lets an all_done cleanup run after a failure; the run outcome follows the leaf', () => {
      const d = serialized([
        task('a'),
        task('b', ['a']),
        task('cleanup', ['b'], { triggerRule: 'all_done' }),
      ]);
      const first = decide(d, states({ a: 'failed' }), NOW);
      expect(first.settle).to.deep.equal([{ taskId: 'b', state: 'upstream_failed' }]);
      expect(first.queue).to.deep.equal([{ taskId: 'cleanup', from: 'none' }]);
      expect(first.runState).to.equal(null);
      const done = decide(d, states({ a: 'failed', b: 'upstream_failed', cleanup: 'success' }), NOW);
      expect(done.runState, 'Airflow: only the leaves decide').to.equal('success');
      const cleanupFailed = decide(d, states({ a: 'failed', b: 'upstream_failed', cleanup: 'failed' }), NOW);
      expect(cleanupFailed.runState).to.equal('failed');
    });

    it('runs a one_failed alert task on failure, skips it otherwise', () => {
      const tasks = [task('work'), task('alert', ['work'], { triggerRule: 'one_failed' })];
      const failed = decide(serialized(tasks), states({ work: 'failed' }), NOW);
      expect(failed.queue).to.deep.equal([{ taskId: 'alert', from: 'none' }]);
      const ok = decide(serialized(tasks), states({ work: 'success' }), NOW);
      expect(ok.settle).to.deep.equal([{ taskId: 'alert', state: 'skipped' }]);
      expect(ok.runState).to.equal('success');
    });

    it('counts upstream_failed as failed for all_failed', () => {
      const d = serialized([
        task('a'),
        task('b', ['a']),
        task('c', ['a', 'b'], { triggerRule: 'all_failed' }),
      ]);
      const out = decide(d, states({ a: 'failed' }), NOW);
      expect(out.settle).to.deep.equal([{ taskId: 'b', state: 'upstream_failed' }]);
      expect(out.queue).to.deep.equal([{ taskId: 'c', from: 'none' }]);
    });

    it('joins branches with none_failed_min_one_success after a skipped branch', () => {
      const d = serialized([
        task('branch'),
        task('left', ['branch']),
        task('right', ['branch']),
        task('join', ['left', 'right'], { triggerRule: 'none_failed_min_one_success' }),
      ]);
      const out = decide(d, states({ branch: 'success', left: 'success', right: 'skipped' }), NOW);
      expect(out.queue).to.deep.equal([{ taskId: 'join', from: 'none' }]);
      const allSkipped = decide(d, states({ branch: 'success', left: 'skipped', right: 'skipped' }), NOW);
      expect(allSkipped.settle).to.deep.equal([{ taskId: 'join', state: 'skipped' }]);
      expect(allSkipped.runState).to.equal('success');
    });

    it('runs an always task straight away, before its upstreams finish', () => {
      const d = serialized([task('a'), task('watch', ['a'], { triggerRule: 'always' })]);
      const out = decide(d, states({}), NOW);
      expect(out.queue.map((q) => q.taskId).sort()).to.deep.equal(['a', 'watch']);
    });
  });

  describe('run outcome', () => {
    const diamond = () =>
      serialized([task('a'), task('b', ['a']), task('c', ['a']), task('leaf1', ['b']), task('leaf2', ['c'])]);

    it('is null while any task is unfinished', () => {
      for (const open of ['none', 'queued', 'running', 'up_for_retry'] as const) {
        const st = states({ a: 'success', b: 'success', c: 'success', leaf1: 'success', leaf2: open });
        if (open === 'up_for_retry') st.set('leaf2', { state: open, nextRetryAt: at(60_000) });
        expect(decide(diamond(), st, NOW).runState, open).to.equal(null);
      }
    });

    it('is success when every leaf succeeded or was skipped', () => {
      const all = { a: 'success', b: 'success', c: 'success', leaf1: 'success', leaf2: 'success' } as const;
      expect(decide(diamond(), states(all), NOW).runState).to.equal('success');
      expect(decide(diamond(), states({ ...all, leaf2: 'skipped' }), NOW).runState).to.equal('success');
    });

    it('is failed when any leaf failed or was upstream_failed', () => {
      const all = { a: 'success', b: 'success', c: 'success', leaf1: 'success', leaf2: 'success' } as const;
      expect(decide(diamond(), states({ ...all, leaf1: 'failed' }), NOW).runState).to.equal('failed');
      expect(
        decide(diamond(), states({ ...all, c: 'failed', leaf2: 'upstream_failed' }), NOW).runState,
      ).to.equal('failed');
    });

    it('is success when a failed task is not a leaf and every leaf succeeded', () => {
      const d = serialized([task('a'), task('b', ['a']), task('end', ['b'], { triggerRule: 'all_done' })]);
      expect(decide(d, states({ a: 'success', b: 'failed', end: 'success' }), NOW).runState).to.equal(
        'success',
      );
    });

    it('is failed for a single task that failed, success for one that succeeded', () => {
      const d = serialized([task('only')]);
      expect(decide(d, states({ only: 'failed' }), NOW).runState).to.equal('failed');
      expect(decide(d, states({ only: 'success' }), NOW).runState).to.equal('success');
    });
  });

  describe('retries', () => {
    const d = serialized([task('a', [], { retries: 2 }), task('b', ['a'])]);

    it('does not queue a retry that is not due yet, and its downstream waits', () => {
      const out = decide(d, states({ a: { state: 'up_for_retry', nextRetryAt: at(1) } }), NOW);
      expect(out).to.deep.equal({ queue: [], settle: [], expand: [], runState: null });
    });

    it('queues a retry that is due now or overdue, from up_for_retry', () => {
      for (const due of [at(0), at(-1), at(-86_400_000)]) {
        const out = decide(d, states({ a: { state: 'up_for_retry', nextRetryAt: due } }), NOW);
        expect(out.queue).to.deep.equal([{ taskId: 'a', from: 'up_for_retry' }]);
        expect(out.settle).to.deep.equal([]);
        expect(out.runState).to.equal(null);
      }
    });

    it('queues a retry with no retry time at once', () => {
      const out = decide(d, states({ a: { state: 'up_for_retry', nextRetryAt: null } }), NOW);
      expect(out.queue).to.deep.equal([{ taskId: 'a', from: 'up_for_retry' }]);
    });
  });
});

describe('nextRetry', () => {
  const t = (over: Partial<SerializedTask>) =>
    task('t', [], { retryDelayMs: 1000, maxRetryDelayMs: 60_000, ...over });

  it('returns null when the task has no retries', () => {
    expect(nextRetry(t({ retries: 0 }), 0, NOW)).to.equal(null);
  });

  it('allows exactly `retries` retries with a fixed delay', () => {
    const tk = t({ retries: 3 });
    expect(nextRetry(tk, 0, NOW)?.getTime()).to.equal(at(1000).getTime());
    expect(nextRetry(tk, 1, NOW)?.getTime()).to.equal(at(1000).getTime());
    expect(nextRetry(tk, 2, NOW)?.getTime()).to.equal(at(1000).getTime());
    expect(nextRetry(tk, 3, NOW)).to.equal(null);
    expect(nextRetry(tk, 10, NOW)).to.equal(null);
  });

  it('doubles the delay with exponential backoff', () => {
    const tk = t({ retries: 5, retryExponentialBackoff: true });
    const delays = [0, 1, 2, 3, 4].map((n) => nextRetry(tk, n, NOW)!.getTime() - NOW.getTime());
    expect(delays).to.deep.equal([1000, 2000, 4000, 8000, 16_000]);
    expect(nextRetry(tk, 5, NOW)).to.equal(null);
  });

  it('caps the delay at maxRetryDelayMs', () => {
    const tk = t({ retries: 10, retryExponentialBackoff: true, maxRetryDelayMs: 5000 });
    const delays = [0, 1, 2, 3, 9].map((n) => nextRetry(tk, n, NOW)!.getTime() - NOW.getTime());
    expect(delays).to.deep.equal([1000, 2000, 4000, 5000, 5000]);
    const fixed = t({ retries: 1, retryDelayMs: 90_000, maxRetryDelayMs: 30_000 });
    expect(nextRetry(fixed, 0, NOW)!.getTime() - NOW.getTime()).to.equal(30_000);
  });

  it('allows a zero delay', () => {
    expect(nextRetry(t({ retries: 1, retryDelayMs: 0 }), 0, NOW)!.getTime()).to.equal(NOW.getTime());
  });

  it('returns a new Date and leaves `now` alone', () => {
    const now = new Date(NOW);
    const next = nextRetry(t({ retries: 1 }), 0, now)!;
    expect(next).to.be.instanceOf(Date);
    expect(next).not.to.equal(now);
    expect(now.getTime()).to.equal(NOW.getTime());
  });
});
