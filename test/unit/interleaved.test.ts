/**
 * The original Air-Tasks "interleaved" example, built with the authoring API and run through decide():
 *
 *   begin_task -> print_date_0..4
 *   print_date_{i-1}, print_date_i -> print_hello_i      (print_hello_0 only after print_date_0)
 *   print_hello_i -> bash_print_i, bash_print_{i+1}      (print_hello_4 only -> bash_print_4)
 *   bash_print_* -> end_task
 */
import { expect } from 'chai';
import { dag, type TaskRef } from '../../src/engine/dag/builder.js';
import type { SerializedDag } from '../../src/core/dag-model.js';
import { decide, nextRetry, type TaskStateBrief } from '../../src/engine/scheduler/decide.js';
import type { TaskState } from '../../src/core/states.js';

const N = 5;
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function buildInterleaved(retries = 0) {
  const d = dag('example_interleaved', {
    description: 'Air-Tasks interleaved example',
    defaults: { retries },
  });
  const begin = d.bash('begin_task', { command: 'echo begin' });
  const dates = range(N).map((i) => d.bash(`print_date_${i}`, { command: 'date', upstream: begin }));
  const hellos: Array<TaskRef<string>> = range(N).map((i) =>
    d.bash(`print_hello_${i}`, {
      command: `echo hello {{ run_id }} ${i}`,
      upstream: i === 0 ? dates[0]! : [dates[i - 1]!, dates[i]!],
    }),
  );
  // The bash_print tasks are wired the other way round, from their upstreams.
  const prints = range(N).map((i) => d.bash(`bash_print_${i}`, { command: `echo ${i}` }));
  range(N).forEach((i) => hellos[i]!.setDownstream(i < N - 1 ? [prints[i]!, prints[i + 1]!] : prints[i]!));
  d.bash('end_task', { command: 'echo end' }).setUpstream(prints);
  return d;
}

/** The edges, written out from the description rather than from the builder code above. */
function expectedEdges(): string[] {
  const e: string[] = [];
  for (let i = 0; i < N; i++) e.push(`begin_task->print_date_${i}`);
  e.push('print_date_0->print_hello_0');
  for (let i = 1; i < N; i++)
    e.push(`print_date_${i - 1}->print_hello_${i}`, `print_date_${i}->print_hello_${i}`);
  for (let i = 0; i < N - 1; i++)
    e.push(`print_hello_${i}->bash_print_${i}`, `print_hello_${i}->bash_print_${i + 1}`);
  e.push(`print_hello_${N - 1}->bash_print_${N - 1}`);
  for (let i = 0; i < N; i++) e.push(`bash_print_${i}->end_task`);
  return e.sort();
}

function edgesOf(s: SerializedDag): string[] {
  return s.tasks.flatMap((t) => t.upstream.map((u) => `${u}->${t.taskId}`)).sort();
}

interface Sim {
  states: Map<string, TaskStateBrief>;
  /** Task ids in the order they were queued, and in which decide() pass. */
  queued: Array<{ taskId: string; pass: number }>;
  settled: Array<{ taskId: string; state: string; pass: number }>;
  runState: 'success' | 'failed';
  passes: number;
}

/**
 * Drives one run the way the scheduler and workers would: each decide() pass, the tasks it queues are
 * checked (every upstream must let them run), then all finish with the state `finish` gives them.
 */
function simulate(
  s: SerializedDag,
  finish: (taskId: string, attempt: number) => TaskState,
  opts: { retryClock?: boolean } = {},
): Sim {
  const st = new Map<string, TaskStateBrief>();
  const upstream = new Map(s.tasks.map((t) => [t.taskId, t.upstream]));
  const tasks = new Map(s.tasks.map((t) => [t.taskId, t]));
  const attempts = new Map<string, number>();
  const sim: Omit<Sim, 'runState'> = { states: st, queued: [], settled: [], passes: 0 };
  let now = new Date('2024-01-01T00:00:00.000Z');
  for (let pass = 1; pass <= 100; pass++) {
    sim.passes = pass;
    const out = decide(s, st, now);
    for (const x of out.settle) {
      expect(st.get(x.taskId)?.state ?? 'none', `${x.taskId} settled twice`).to.equal('none');
      st.set(x.taskId, { state: x.state, nextRetryAt: null });
      sim.settled.push({ ...x, pass });
    }
    if (out.runState) {
      expect(out.queue, 'nothing to queue once the run is over').to.deep.equal([]);
      return { ...sim, runState: out.runState };
    }
    for (const q of out.queue) {
      const prev = st.get(q.taskId)?.state ?? 'none';
      expect(prev, `${q.taskId} queued from ${prev}`).to.equal(q.from);
      for (const up of upstream.get(q.taskId)!) {
        expect(st.get(up)?.state, `${q.taskId} queued before its upstream ${up} succeeded`).to.equal(
          'success',
        );
      }
      st.set(q.taskId, { state: 'queued', nextRetryAt: null });
      sim.queued.push({ taskId: q.taskId, pass });
    }
    const running = [...st].filter(([, v]) => v.state === 'queued').map(([k]) => k);
    if (running.length === 0 && out.queue.length === 0) {
      // Only waiting retries are left: let time pass.
      expect(opts.retryClock, `stuck at pass ${pass}`).to.equal(true);
      const due = [...st.values()]
        .filter((v) => v.state === 'up_for_retry')
        .map((v) => v.nextRetryAt!.getTime());
      expect(due.length).to.be.greaterThan(0);
      now = new Date(Math.min(...due));
      continue;
    }
    for (const id of running) {
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      const end = finish(id, n);
      if (end === 'failed') {
        const retryAt = nextRetry(tasks.get(id)!, n - 1, now);
        st.set(
          id,
          retryAt ? { state: 'up_for_retry', nextRetryAt: retryAt } : { state: 'failed', nextRetryAt: null },
        );
      } else {
        st.set(id, { state: end, nextRetryAt: null });
      }
    }
  }
  throw new Error('the run did not finish in 100 passes');
}

const byPass = (sim: Sim) => {
  const waves: string[][] = [];
  for (const q of sim.queued) (waves[q.pass - 1] ??= []).push(q.taskId);
  return waves.filter(Boolean).map((w) => w.sort());
};

const finalState = (sim: Sim) => Object.fromEntries([...sim.states].map(([k, v]) => [k, v.state]));

describe('the interleaved example DAG', () => {
  it('has the 17 tasks and exactly the 28 edges of the original', () => {
    const s = buildInterleaved().serialize('interleaved.ts');
    expect(s.tasks).to.have.length(17);
    expect(new Set(s.tasks.map((t) => t.taskId))).to.deep.equal(
      new Set([
        'begin_task',
        ...range(N).flatMap((i) => [`print_date_${i}`, `print_hello_${i}`, `bash_print_${i}`]),
        'end_task',
      ]),
    );
    expect(s.tasks.every((t) => t.operator === 'bash')).to.equal(true);
    const edges = edgesOf(s);
    expect(edges).to.have.length(28);
    expect(edges).to.deep.equal(expectedEdges());
  });

  it('has one root and one leaf', () => {
    const s = buildInterleaved().serialize();
    expect(s.tasks.filter((t) => t.upstream.length === 0).map((t) => t.taskId)).to.deep.equal(['begin_task']);
    const ups = new Set(s.tasks.flatMap((t) => t.upstream));
    expect(s.tasks.filter((t) => !ups.has(t.taskId)).map((t) => t.taskId)).to.deep.equal(['end_task']);
  });

  it('runs to success in five waves, each task once, in dependency order', () => {
    const sim = simulate(buildInterleaved().serialize(), () => 'success');
    expect(sim.runState).to.equal('success');
    expect(sim.settled).to.deep.equal([]);
    expect(sim.queued).to.have.length(17);
    expect(new Set(sim.queued.map((q) => q.taskId)).size).to.equal(17);
    expect(byPass(sim)).to.deep.equal([
      ['begin_task'],
      range(N).map((i) => `print_date_${i}`),
      range(N).map((i) => `print_hello_${i}`),
      range(N).map((i) => `bash_print_${i}`),
      ['end_task'],
    ]);
    expect(Object.values(finalState(sim)).every((v) => v === 'success')).to.equal(true);
  });

  it('runs a task as soon as its own upstreams are done, not a whole level later', () => {
    // print_date_4 is slow (three passes); print_hello_0..3 and bash_print_0..3 must not wait for it.
    const s = buildInterleaved().serialize();
    let slowPasses = 0;
    const order: string[] = [];
    const st = new Map<string, TaskStateBrief>();
    const now = new Date('2024-01-01T00:00:00.000Z');
    for (let pass = 0; pass < 30; pass++) {
      const out = decide(s, st, now);
      if (out.runState) {
        expect(out.runState).to.equal('success');
        break;
      }
      for (const q of out.queue) st.set(q.taskId, { state: 'queued', nextRetryAt: null });
      for (const [id, v] of st) {
        if (v.state !== 'queued') continue;
        if (id === 'print_date_4' && slowPasses++ < 3) continue;
        st.set(id, { state: 'success', nextRetryAt: null });
        order.push(id);
      }
    }
    expect(order).to.have.length(17);
    const pos = (id: string) => order.indexOf(id);
    expect(pos('bash_print_3')).to.be.lessThan(pos('print_date_4'));
    expect(pos('bash_print_0')).to.be.lessThan(pos('print_date_4'));
    expect(pos('print_hello_4')).to.be.greaterThan(pos('print_date_4'));
    expect(pos('bash_print_4')).to.be.greaterThan(pos('print_hello_4'));
    expect(order.at(-1)).to.equal('end_task');
  });

  it('propagates a failure of print_date_2 in one pass and fails the run', () => {
    const sim = simulate(buildInterleaved().serialize(), (id) =>
      id === 'print_date_2' ? 'failed' : 'success',
    );
    expect(sim.runState).to.equal('failed');

    // The whole downstream cone of print_date_2 is settled in the pass right after it failed.
    const cone = [
      'print_hello_2',
      'print_hello_3',
      'bash_print_2',
      'bash_print_3',
      'bash_print_4',
      'end_task',
    ];
    expect(sim.settled.map((x) => x.taskId).sort()).to.deep.equal([...cone].sort());
    expect(sim.settled.every((x) => x.state === 'upstream_failed')).to.equal(true);
    expect(new Set(sim.settled.map((x) => x.pass))).to.deep.equal(new Set([3]));

    // Everything outside the cone still ran and succeeded.
    expect(finalState(sim)).to.deep.equal({
      begin_task: 'success',
      print_date_0: 'success',
      print_date_1: 'success',
      print_date_2: 'failed',
      print_date_3: 'success',
      print_date_4: 'success',
      print_hello_0: 'success',
      print_hello_1: 'success',
      print_hello_2: 'upstream_failed',
      print_hello_3: 'upstream_failed',
      print_hello_4: 'success',
      bash_print_0: 'success',
      bash_print_1: 'success',
      bash_print_2: 'upstream_failed',
      bash_print_3: 'upstream_failed',
      bash_print_4: 'upstream_failed',
      end_task: 'upstream_failed',
    });
    expect(sim.queued.map((q) => q.taskId).filter((id) => cone.includes(id))).to.deep.equal([]);
  });

  it('reports the run failed only after the tasks outside the failed cone have finished', () => {
    const s = buildInterleaved().serialize();
    const st = new Map<string, TaskStateBrief>(
      ['begin_task', 'print_date_0', 'print_date_1', 'print_date_3', 'print_date_4'].map((id) => [
        id,
        { state: 'success', nextRetryAt: null },
      ]),
    );
    st.set('print_date_2', { state: 'failed', nextRetryAt: null });
    const out = decide(s, st, new Date());
    expect(out.queue.map((q) => q.taskId).sort()).to.deep.equal([
      'print_hello_0',
      'print_hello_1',
      'print_hello_4',
    ]);
    expect(out.runState, 'print_hello_0/1/4 have yet to run').to.equal(null);
  });

  it('recovers from a failure that a retry fixes, waiting for the retry delay', () => {
    const s = buildInterleaved(1).serialize();
    const sim = simulate(
      s,
      (id, attempt) => (id === 'print_date_2' && attempt === 1 ? 'failed' : 'success'),
      {
        retryClock: true,
      },
    );
    expect(sim.runState).to.equal('success');
    expect(sim.settled).to.deep.equal([]);
    const dateTwo = sim.queued.filter((q) => q.taskId === 'print_date_2');
    expect(dateTwo).to.have.length(2);
    // Queued again only after the clock reached its retry time: one idle pass in between.
    expect(dateTwo[1]!.pass - dateTwo[0]!.pass).to.be.greaterThan(1);
    const helloTwo = sim.queued.find((q) => q.taskId === 'print_hello_2')!;
    expect(helloTwo.pass).to.be.greaterThan(dateTwo[1]!.pass);
    expect(Object.values(finalState(sim)).every((v) => v === 'success')).to.equal(true);
  });

  it('fails the run when the retries run out', () => {
    const s = buildInterleaved(2).serialize();
    const sim = simulate(s, (id) => (id === 'bash_print_1' ? 'failed' : 'success'), { retryClock: true });
    expect(sim.runState).to.equal('failed');
    expect(sim.queued.filter((q) => q.taskId === 'bash_print_1')).to.have.length(3);
    expect(finalState(sim)).to.include({
      bash_print_1: 'failed',
      end_task: 'upstream_failed',
      bash_print_2: 'success',
    });
  });
});
