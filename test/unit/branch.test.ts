/** Branching and run control in the pure engine: decide() applying branch choices, cancelled tasks, the authoring API. */
import { expect } from 'chai';
import { resolveBranchChoice } from '../../src/engine/dag/branch.js';
import { dag } from '../../src/engine/dag/builder.js';
import { DagValidationError } from '../../src/engine/dag/validate.js';
import { decide } from '../../src/engine/scheduler/decide.js';
import { downstreamOf } from '../../src/services/run-control.js';
import { serialized, states, task } from './fixtures.js';

const NOW = new Date('2024-05-01T12:00:00.000Z');

// choose -> a -> a2 ; choose -> b ; choose -> c ; join(a2, b, c) none_failed_min_one_success ; strict(a2, b) all_success
const BRANCHED = serialized([
  task('choose', [], { operator: 'branch' }),
  task('a', ['choose']),
  task('a2', ['a']),
  task('b', ['choose']),
  task('c', ['choose'], { triggerRule: 'all_done' }),
  task('join', ['a2', 'b', 'c'], { triggerRule: 'none_failed_min_one_success' }),
  task('strict', ['a2', 'b']),
]);

const branchDone = (output: unknown) =>
  new Map([
    ...states({ a: 'none', a2: 'none', b: 'none', c: 'none', join: 'none', strict: 'none' }),
    ['choose', { state: 'success' as const, nextRetryAt: null, output }],
  ]);

describe('decide: branching', () => {
  it('queues the chosen direct downstream tasks and skips the others, whatever their trigger rule', () => {
    const d = decide(BRANCHED, branchDone(['a']), NOW);
    expect(d.queue).to.deep.equal([{ taskId: 'a', from: 'none' }]);
    // c is all_done, yet a branch that did not choose it skips it (Airflow's semantics).
    expect(d.settle).to.have.deep.members([
      { taskId: 'b', state: 'skipped' },
      { taskId: 'c', state: 'skipped' },
      { taskId: 'strict', state: 'skipped' }, // all_success with a skipped upstream
    ]);
    expect(d.runState).to.equal(null);
  });

  it('runs the none_failed_min_one_success join after the chosen path, and the run succeeds', () => {
    const s = branchDone(['a']);
    for (const [id, st] of Object.entries({
      a: 'success',
      a2: 'success',
      b: 'skipped',
      c: 'skipped',
      strict: 'skipped',
    }))
      s.set(id, { state: st as 'success', nextRetryAt: null });
    const d = decide(BRANCHED, s, NOW);
    expect(d.queue).to.deep.equal([{ taskId: 'join', from: 'none' }]);
    s.set('join', { state: 'success', nextRetryAt: null });
    expect(decide(BRANCHED, s, NOW).runState).to.equal('success');
  });

  it('runs several chosen tasks; an empty choice skips every path and the join too', () => {
    const two = decide(BRANCHED, branchDone(['b', 'c']), NOW);
    expect(two.queue.map((q) => q.taskId).sort()).to.deep.equal(['b', 'c']);
    expect(two.settle).to.have.deep.members([
      { taskId: 'a', state: 'skipped' },
      { taskId: 'a2', state: 'skipped' },
      { taskId: 'strict', state: 'skipped' },
    ]);
    const none = decide(BRANCHED, branchDone([]), NOW);
    expect(none.queue).to.deep.equal([]);
    expect(new Set(none.settle.map((x) => `${x.taskId}:${x.state}`))).to.deep.equal(
      new Set(['a:skipped', 'a2:skipped', 'b:skipped', 'c:skipped', 'join:skipped', 'strict:skipped']),
    );
    expect(none.runState).to.equal('success');
  });

  it('does nothing for the branch downstream before the branch succeeds; a failed branch fails its paths', () => {
    const pending = branchDone(['a']);
    pending.set('choose', { state: 'running', nextRetryAt: null, output: null });
    expect(decide(BRANCHED, pending, NOW)).to.deep.include({ queue: [], settle: [] });
    const failed = branchDone(null);
    failed.set('choose', { state: 'failed', nextRetryAt: null, output: null });
    const d = decide(BRANCHED, failed, NOW);
    expect(d.settle.find((x) => x.taskId === 'a')).to.deep.equal({ taskId: 'a', state: 'upstream_failed' });
    expect(d.queue).to.deep.equal([{ taskId: 'c', from: 'none' }]); // all_done runs after a failure
  });
});

describe('decide: cancelled tasks', () => {
  it('count as failures for trigger rules and make the run fail', () => {
    const dagT = serialized([task('a'), task('b', ['a']), task('c', ['a'], { triggerRule: 'all_done' })]);
    const d = decide(dagT, states({ a: 'cancelled', b: 'none', c: 'none' }), NOW);
    expect(d.settle).to.deep.equal([{ taskId: 'b', state: 'upstream_failed' }]);
    expect(d.queue).to.deep.equal([{ taskId: 'c', from: 'none' }]);
    expect(decide(dagT, states({ a: 'success', b: 'cancelled', c: 'success' }), NOW).runState).to.equal(
      'failed',
    );
  });
});

describe('branch choices', () => {
  const dagS = BRANCHED;
  const choose = BRANCHED.tasks[0]!;
  it('accepts ids, references, lists of them and null, without duplicates', () => {
    expect(resolveBranchChoice(dagS, choose, 'a')).to.deep.equal(['a']);
    expect(resolveBranchChoice(dagS, choose, { id: 'b' })).to.deep.equal(['b']);
    expect(resolveBranchChoice(dagS, choose, ['c', { id: 'a' }, 'c'])).to.deep.equal(['c', 'a']);
    expect(resolveBranchChoice(dagS, choose, null)).to.deep.equal([]);
    expect(resolveBranchChoice(dagS, choose, [])).to.deep.equal([]);
  });
  it('refuses tasks that are not direct downstream, naming the ones that are', () => {
    expect(() => resolveBranchChoice(dagS, choose, 'a2')).to.throw(
      'branch task "choose" chose "a2", which is not one of its direct downstream tasks (a, b, c)',
    );
    expect(() => resolveBranchChoice(dagS, choose, 'nope')).to.throw(/chose "nope"/);
    expect(() => resolveBranchChoice(dagS, choose, 42)).to.throw(/returned number 42/);
    expect(() => resolveBranchChoice(dagS, choose, [['a']])).to.throw(/a nested list/);
  });
});

describe('authoring: branch and runTimeout', () => {
  it('serialises a branch task as operator "branch" with its function, typed as a list of ids', () => {
    const d = dag<{ big?: boolean }>('br', { runTimeout: '2m' });
    const pick = d.branch('pick', { run: (ctx) => (ctx.conf.big ? big : 'small') });
    const big = d.bash('big', { command: 'echo big', upstream: pick });
    d.bash('small', { command: 'echo small', upstream: pick });
    const s = d.serialize();
    expect(s.runTimeoutMs).to.equal(120_000);
    expect(s.tasks.find((t) => t.taskId === 'pick')).to.include({ operator: 'branch' });
    expect(d.functions.has('pick')).to.equal(true);
    const typed: string[] | undefined = pick.__output; // compile-time check of the output type
    expect(typed).to.equal(undefined);
  });

  it('leaves runTimeoutMs out when unset (existing DAG hashes do not change)', () => {
    const d = dag('plain');
    d.bash('a', { command: 'true' });
    expect(d.serialize()).to.not.have.property('runTimeoutMs');
  });

  it('refuses a bad runTimeout and a branch without downstream tasks', () => {
    expect(() => dag('bad', { runTimeout: 'soon' as '1s' })).to.throw(/runTimeout "soon"/);
    const d = dag('lonely');
    d.branch('pick', { run: () => null });
    expect(() => d.serialize()).to.throw(DagValidationError, /branch task "pick" has no downstream tasks/);
  });

  it('finds every transitive downstream task for tasks clear --downstream', () => {
    expect(downstreamOf(BRANCHED.tasks, 'a').sort()).to.deep.equal(['a2', 'join', 'strict']);
    expect(downstreamOf(BRANCHED.tasks, 'join')).to.deep.equal([]);
  });
});
