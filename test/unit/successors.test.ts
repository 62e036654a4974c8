import { expect } from 'chai';
import { BRANCH_OPERATOR } from '../../src/engine/dag/branch.js';
import { TRIGGER_RULES, type SerializedTask } from '../../src/core/dag-model.js';
import { decide } from '../../src/engine/scheduler/decide.js';
import type { TaskState } from '../../src/core/states.js';
import { judge, successorPlan } from '../../src/engine/worker/successors.js';
import { seededRandom } from '../helpers/faults.js';
import { serialized, states, task } from './fixtures.js';

const NOW = new Date('2024-05-01T12:00:00.000Z');

describe('successors: what a worker decides itself when a task succeeds', () => {
  it('leaves pools, DAG task limits and branches to the scheduler; a task without downstream is a leaf', () => {
    const chain = serialized([task('a'), task('b', ['a'])]);
    expect(successorPlan(chain, chain.tasks[0]!).kind).to.equal('direct');
    const join = serialized([task('a'), task('x'), task('b', ['a', 'x'])]);
    expect(successorPlan(join, join.tasks[0]!).kind).to.equal('downstream');
    // A rule that does not run on its only upstream's success is left to judgement (here: skipped).
    const allFailed = serialized([task('a'), task('b', ['a'], { triggerRule: 'all_failed' })]);
    expect(successorPlan(allFailed, allFailed.tasks[0]!).kind).to.equal('downstream');
    expect(successorPlan(chain, chain.tasks[1]!)).to.deep.equal({ kind: 'leaf', only: true });
    // One leaf of several: its success seldom ends the run (RunEndChecks checks it after its interval).
    const fan = serialized([task('a'), task('b'), task('c', ['a'])]);
    expect(successorPlan(fan, fan.tasks[1]!)).to.deep.equal({ kind: 'leaf', only: false });
    expect(successorPlan(fan, fan.tasks[2]!)).to.deep.equal({ kind: 'leaf', only: false });
    const pooled = serialized([task('a', [], { pool: 'p' }), task('b', ['a'])]);
    expect(successorPlan(pooled, pooled.tasks[0]!).kind).to.equal('scheduler');
    const pooledNext = serialized([task('a'), task('b', ['a'], { pool: 'p' })]);
    expect(successorPlan(pooledNext, pooledNext.tasks[0]!).kind).to.equal('scheduler');
    const limited = { ...serialized([task('a'), task('b', ['a'])]), maxActiveTasks: 2 };
    expect(successorPlan(limited, limited.tasks[0]!).kind).to.equal('scheduler');
    const branch = serialized([
      task('a', [], { operator: BRANCH_OPERATOR }),
      task('b', ['a']),
      task('c', ['x', 'b']),
      task('x'),
    ]);
    expect(successorPlan(branch, branch.tasks[0]!).kind).to.equal('scheduler');
    // x's downstream c has no branch upstream (b is not a branch): x may decide c itself.
    expect(successorPlan(branch, branch.tasks[3]!).kind).to.equal('downstream');
  });

  it('agrees with the scheduler on every downstream task, for random DAGs, trigger rules and states', () => {
    const rnd = seededRandom(7);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    // States of the tasks that are not the succeeded task's downstream: none of them 'none', so the
    // scheduler's verdicts come from stored states alone (as they do when the worker judges).
    const others: TaskState[] = [
      'success',
      'failed',
      'upstream_failed',
      'skipped',
      'cancelled',
      'running',
      'queued',
    ];
    let queued = 0;
    let escalated = 0;
    let direct = 0;
    for (let round = 0; round < 500; round++) {
      const n = 3 + Math.floor(rnd() * 8);
      const tasks: SerializedTask[] = [];
      for (let i = 0; i < n; i++) {
        const upstream = tasks.filter(() => rnd() < 0.4).map((t) => t.taskId);
        tasks.push(task(`t${i}`, upstream, { triggerRule: pick(TRIGGER_RULES) }));
      }
      const dag = serialized(tasks);
      const done = pick(tasks);
      const plan = successorPlan(dag, done);
      if (plan.kind === 'direct') {
        // Started with the result, unjudged: each waits for the done task alone, and the scheduler too
        // would queue every one of them still waiting.
        const st: Record<string, TaskState> = {};
        for (const t of tasks) st[t.taskId] = t === done ? 'success' : pick([...others, 'none']);
        for (const t of plan.downstream) st[t.taskId] = 'none';
        const d = decide(dag, states(st), NOW);
        for (const t of plan.downstream) {
          expect(t.upstream).to.deep.equal([done.taskId]);
          expect(
            d.queue.some((q) => q.taskId === t.taskId),
            `${t.taskId} queued by the scheduler too`,
          ).to.equal(true);
        }
        direct++;
        continue;
      }
      if (plan.kind !== 'downstream') continue;
      const downstream = new Set(plan.downstream.map((t) => t.taskId));
      const st: Record<string, TaskState> = {};
      for (const t of tasks)
        st[t.taskId] =
          t === done ? 'success' : downstream.has(t.taskId) && rnd() < 0.8 ? 'none' : pick(others);
      // A downstream task's own upstream may be another downstream task in state none: the worker then waits.
      const judged = judge(plan.downstream, new Map(Object.entries(st)));
      const d = decide(dag, states(st), NOW);
      for (const t of plan.downstream) {
        if (st[t.taskId] !== 'none') continue;
        const pendingUp = t.upstream.some((u) => st[u] === 'none');
        const schedulerQueues = d.queue.some((q) => q.taskId === t.taskId);
        const schedulerSettles = d.settle.some((x) => x.taskId === t.taskId);
        if (judged.queue.includes(t.taskId)) {
          expect(schedulerQueues, `${t.taskId} queued by the worker only`).to.equal(true);
          queued++;
        } else if (!pendingUp) {
          expect(schedulerQueues, `${t.taskId} queued by the scheduler only`).to.equal(false);
          if (schedulerSettles)
            expect(judged.scheduler, `${t.taskId} settled without the scheduler`).to.equal(true);
        }
        if (schedulerSettles && !pendingUp) escalated++;
      }
      if (Object.entries(st).some(([id, s]) => downstream.has(id) && s === 'none'))
        expect(judged.unfinished).to.equal(true);
    }
    expect(queued).to.be.greaterThan(20);
    expect(escalated).to.be.greaterThan(20);
    expect(direct).to.be.greaterThan(20);
  });

  it('says the run may be over only when every downstream task has finished', () => {
    const dag = serialized([
      task('a'),
      task('x'),
      task('b', ['a', 'x'], { triggerRule: 'one_success' }),
      task('c', ['a', 'x']),
    ]);
    const plan = successorPlan(dag, dag.tasks[0]!);
    if (plan.kind !== 'downstream') throw new Error('expected a downstream plan');
    const m = (o: Record<string, TaskState>) => new Map(Object.entries(o));
    expect(
      judge(plan.downstream, m({ a: 'success', x: 'success', b: 'success', c: 'skipped' })),
    ).to.deep.equal({
      queue: [],
      scheduler: false,
      unfinished: false,
    });
    expect(judge(plan.downstream, m({ a: 'success', x: 'success', b: 'running', c: 'none' }))).to.deep.equal({
      queue: ['c'],
      scheduler: false,
      unfinished: true,
    });
  });
});
