import { expect } from 'chai';
import {
  backlogOf,
  decideScale,
  FRESH_MEMORY,
  nodesFor,
  wantedWorkers,
  type QueueReading,
  type QueueScaleMemory,
  type QueueScalePolicy,
} from '../../src/engine/autoscale/decide.js';
import { planQueue } from '../../src/services/autoscale/autoscaler.js';
import { autoscaledQueues, type QueueAutoscaleConfig } from '../../src/services/autoscale/config.js';
import { alwaysKept, decisionInputs } from '../../src/services/autoscale/history.js';
import type { Project } from '../../src/services/config.js';

const POLICY: QueueScalePolicy = { concurrency: 2, min: 1, max: 4, cooldownMs: 10_000 };
const read = (ready: number, running: number, unacked: number | null = null): QueueReading => ({
  ok: true,
  ready,
  running,
  unacked,
});

describe('autoscale: decide (pure)', () => {
  it('wants ceil(backlog / concurrency) workers, clamped to min..max', () => {
    expect([0, 1, 2, 3, 4, 5, 8, 9, 100].map((b) => wantedWorkers(b, POLICY))).to.deep.equal([
      1, 1, 1, 2, 2, 3, 4, 4, 4,
    ]);
    expect(wantedWorkers(0, { ...POLICY, min: 0 })).to.equal(0);
  });

  it('counts a held message and a running task once, not twice', () => {
    expect(backlogOf({ ready: 3, unacked: null, running: 2 })).to.equal(5);
    expect(backlogOf({ ready: 3, unacked: 2, running: 2 })).to.equal(5);
    expect(backlogOf({ ready: 3, unacked: 4, running: 1 })).to.equal(7);
    expect(backlogOf({ ready: 0, unacked: 0, running: 3 })).to.equal(3);
  });

  it('scales up at once, to the max at most', () => {
    const r = decideScale(POLICY, 1, read(20, 0), FRESH_MEMORY, 0);
    expect(r.decision).to.deep.include({ action: 'up', current: 1, wanted: 4, target: 4, backlog: 20 });
    expect(r.memory).to.deep.equal(FRESH_MEMORY);
  });

  it('holds when the size is right', () => {
    const r = decideScale(POLICY, 2, read(1, 2), FRESH_MEMORY, 0);
    expect(r.decision).to.deep.include({ action: 'hold', target: 2, wanted: 2, backlog: 3 });
  });

  it('scales down only after a whole cooldown of low backlog, to the most wanted meanwhile', () => {
    let mem: QueueScaleMemory = FRESH_MEMORY;
    const step = (t: number, reading: QueueReading, current = 4) => {
      const r = decideScale(POLICY, current, reading, mem, t);
      mem = r.memory;
      return r.decision;
    };
    expect(step(0, read(0, 3))).to.deep.include({
      action: 'cooldown',
      target: 4,
      wanted: 2,
      cooldownLeftMs: 10_000,
    });
    expect(step(4_000, read(0, 5))).to.deep.include({ action: 'cooldown', wanted: 3, cooldownLeftMs: 6_000 });
    expect(step(9_999, read(0, 0))).to.deep.include({ action: 'cooldown', wanted: 1, cooldownLeftMs: 1 });
    // The peak of the low period (3) wins over the last reading (1).
    expect(step(10_000, read(0, 0))).to.deep.include({ action: 'down', current: 4, target: 3 });
    expect(mem).to.deep.equal(FRESH_MEMORY);
    // A new low period starts from scratch.
    expect(step(10_001, read(0, 0), 3)).to.deep.include({ action: 'cooldown', cooldownLeftMs: 10_000 });
    expect(step(20_001, read(0, 0), 3)).to.deep.include({ action: 'down', target: 1 });
  });

  it('a burst during the cooldown cancels it', () => {
    let r = decideScale(POLICY, 3, read(0, 0), FRESH_MEMORY, 0);
    expect(r.decision.action).to.equal('cooldown');
    r = decideScale(POLICY, 3, read(6, 0), r.memory, 5_000);
    expect(r.decision).to.deep.include({ action: 'hold', target: 3 });
    r = decideScale(POLICY, 3, read(0, 0), r.memory, 12_000);
    expect(r.decision).to.deep.include({ action: 'cooldown', cooldownLeftMs: 10_000 });
  });

  it('a failed read keeps the current size (never zero) and restarts the cooldown', () => {
    let r = decideScale({ ...POLICY, min: 0 }, 3, read(0, 0), FRESH_MEMORY, 0);
    expect(r.decision.action).to.equal('cooldown');
    r = decideScale(
      { ...POLICY, min: 0 },
      3,
      { ok: false, error: 'broker unreachable: ECONNREFUSED' },
      r.memory,
      11_000,
    );
    expect(r.decision).to.deep.equal({
      action: 'read-failed',
      current: 3,
      wanted: null,
      target: 3,
      backlog: null,
      cooldownLeftMs: null,
      reason: 'keeping 3: broker unreachable: ECONNREFUSED',
    });
    r = decideScale({ ...POLICY, min: 0 }, 3, read(0, 0), r.memory, 12_000);
    expect(r.decision).to.deep.include({ action: 'cooldown', cooldownLeftMs: 10_000 });
  });

  it('waits for workers still draining before the next scale-down, keeping the cooldown', () => {
    let r = decideScale(POLICY, 3, read(0, 1), FRESH_MEMORY, 0, 1);
    expect(r.decision.action).to.equal('cooldown');
    r = decideScale(POLICY, 3, read(0, 1), r.memory, 10_000, 1);
    expect(r.decision).to.deep.include({ action: 'draining', current: 3, target: 3 });
    expect(r.decision.reason).to.equal(
      'backlog 1 needs 1; waiting for 1 stopped worker(s) to finish their tasks',
    );
    r = decideScale(POLICY, 3, read(0, 1), r.memory, 12_000, 0);
    expect(r.decision).to.deep.include({ action: 'down', target: 1 });
    // Scaling up does not wait, but what draining workers hold needs no new worker.
    expect(decideScale(POLICY, 1, read(8, 0), FRESH_MEMORY, 0, 2).decision).to.deep.include({
      action: 'up',
      target: 2,
    });
    expect(decideScale(POLICY, 1, read(0, 3), FRESH_MEMORY, 0, 1).decision).to.deep.include({
      action: 'hold',
      wanted: 1,
      backlog: 3,
    });
  });

  it('a cooldown of 0 scales down in the same pass', () => {
    const r = decideScale({ ...POLICY, cooldownMs: 0 }, 4, read(0, 1), FRESH_MEMORY, 0);
    expect(r.decision).to.deep.include({ action: 'down', target: 1 });
  });

  it('machines for workers: ceil(workers / workersPerNode)', () => {
    expect([0, 1, 2, 3, 4].map((w) => nodesFor(w, 2))).to.deep.equal([0, 1, 1, 2, 2]);
  });
});

describe('autoscale: queue settings from airtasks.json', () => {
  const project = (queues: unknown): Project => ({
    root: '/p',
    configFile: '/p/airtasks.json',
    config: { dagsFolder: 'dags', queues: queues as Project['config']['queues'] },
  });
  const defaults = { stack: 'prod', cooldownMs: 120_000 };

  it('autoscales queues with a max; defaults for the rest of the fields', () => {
    const qs = autoscaledQueues(
      project({
        worker: {
          concurrency: 2,
          min: 1,
          max: 4,
          cooldown: '30s',
          nodeGroupHook: 'resize.sh',
          workersPerNode: 2,
        },
        gpu: { concurrency: 1, max: 2 },
        fixed: { concurrency: 3 },
      }),
      defaults,
    );
    expect(qs).to.deep.equal([
      {
        queue: 'worker',
        service: 'prod_worker-worker',
        concurrency: 2,
        min: 1,
        max: 4,
        cooldownMs: 30_000,
        nodeGroupHook: 'resize.sh',
        workersPerNode: 2,
      },
      {
        queue: 'gpu',
        service: 'prod_worker-gpu',
        concurrency: 1,
        min: 1,
        max: 2,
        cooldownMs: 120_000,
        nodeGroupHook: null,
        workersPerNode: 1,
      },
    ]);
  });

  it('names the queue and field of a bad value', () => {
    const bad = (q: unknown, msg: string) =>
      expect(() => autoscaledQueues(project({ w: q }), defaults))
        .to.throw(msg)
        .with.property('exitCode', 2);
    bad({ max: 0 }, 'queues.w.max in /p/airtasks.json must be an integer of at least 1, got 0');
    bad({ min: 3, max: 2 }, 'queues.w.max in /p/airtasks.json must be an integer of at least 3, got 2');
    bad({ max: 2, concurrency: 1.5 }, 'queues.w.concurrency');
    bad({ max: 2, min: -1 }, 'queues.w.min');
    bad({ max: '4' }, 'queues.w.max');
    bad({ max: 2, cooldown: 'soon' }, 'queues.w.cooldown "soon" is not a duration');
    bad(
      { max: 2, nodeGroupHook: '' },
      'queues.w.nodeGroupHook in /p/airtasks.json must be a non-empty shell command',
    );
  });

  it('refuses a queue asked for by name that is missing or has no max', () => {
    expect(() => autoscaledQueues(project({ w: { max: 2 } }), defaults, ['x'])).to.throw(
      'queue "x" is not in',
    );
    expect(() => autoscaledQueues(project({ w: { concurrency: 2 } }), defaults, ['w'])).to.throw(
      'queues.w in /p/airtasks.json has no "max"',
    );
  });
});

describe('autoscale: the dry-run outcome of a queue', () => {
  const q: QueueAutoscaleConfig = {
    queue: 'q',
    service: 'prod_worker-q',
    concurrency: 2,
    min: 1,
    max: 4,
    cooldownMs: 60_000,
    nodeGroupHook: null,
    workersPerNode: 1,
  };

  it('carries the inputs, the sizes and the reason', () => {
    const { outcome } = planQueue(q, { replicas: 1 }, read(5, 2, null), FRESH_MEMORY, 0);
    expect(outcome).to.deep.equal({
      queue: 'q',
      service: 'prod_worker-q',
      min: 1,
      max: 4,
      concurrency: 2,
      inputs: { ready: 5, unacked: null, running: 2 },
      action: 'up',
      current: 1,
      wanted: 4,
      target: 4,
      backlog: 7,
      cooldownLeftMs: null,
      reason: 'backlog 7 needs 4 worker(s) of concurrency 2',
      scaled: false,
      nodes: null,
      error: null,
    });
    expect(JSON.parse(JSON.stringify(outcome))).to.deep.equal(outcome);
  });

  it('a cooldown says how long is left', () => {
    const { outcome } = planQueue(q, { replicas: 3 }, read(0, 1, 0), FRESH_MEMORY, 0);
    expect(outcome).to.deep.include({
      action: 'cooldown',
      current: 3,
      wanted: 1,
      target: 3,
      cooldownLeftMs: 60_000,
    });
    expect(outcome.reason).to.equal('backlog 1 needs 1; scaling down after 60s more of low backlog');
  });

  it('a service that cannot be read changes nothing and says why', () => {
    const { outcome, memory } = planQueue(
      q,
      { error: 'no swarm service named prod_worker-q' },
      read(9, 0),
      { lowSince: 0, lowPeak: 1 },
      5,
    );
    expect(outcome).to.deep.include({
      action: 'read-failed',
      current: null,
      target: null,
      inputs: { ready: 9, unacked: null, running: 0 },
      error: 'no swarm service named prod_worker-q',
    });
    expect(memory).to.deep.equal(FRESH_MEMORY);
  });

  it('a failed backlog read keeps the replicas', () => {
    const { outcome } = planQueue(
      q,
      { replicas: 2 },
      { ok: false, error: 'database read failed: x' },
      FRESH_MEMORY,
      0,
    );
    expect(outcome).to.deep.include({ action: 'read-failed', current: 2, target: 2, inputs: null });
    expect(outcome.reason).to.equal('keeping 2: database read failed: x');
  });
});

describe('autoscale: which decisions are recorded, with which inputs', () => {
  const q: QueueAutoscaleConfig = {
    queue: 'q',
    service: 's',
    concurrency: 2,
    min: 1,
    max: 4,
    cooldownMs: 60_000,
    nodeGroupHook: null,
    workersPerNode: 1,
  };
  const plan = (replicas: number, reading: QueueReading) =>
    planQueue(q, { replicas }, reading, FRESH_MEMORY, 0).outcome;

  it('always a scale, a failed scale or a hook that ran; a hold or a failed read only when it differs (left to the store)', () => {
    expect(alwaysKept(plan(1, read(5, 0)))).to.equal(true); // up
    expect(alwaysKept(plan(2, { ok: false, error: 'x' }))).to.equal(false); // read-failed: when it differs
    expect(alwaysKept(planQueue(q, { error: 'gone' }, read(0, 0), FRESH_MEMORY, 0).outcome)).to.equal(true);
    const hold = plan(2, read(3, 0));
    expect(hold.action).to.equal('hold');
    expect(alwaysKept(hold)).to.equal(false);
    expect(alwaysKept(plan(3, read(0, 0)))).to.equal(false); // cooldown
    expect(alwaysKept({ ...hold, nodes: { desired: 2, hook: 'unchanged', error: null } })).to.equal(false);
    expect(alwaysKept({ ...hold, nodes: { desired: 2, hook: 'failed', error: 'exit 1' } })).to.equal(true);
    expect(alwaysKept({ ...hold, nodes: { desired: 2, hook: 'ran', error: null } })).to.equal(true);
  });

  it('inputs: the readings, the backlog, the settings and the cooldown state in one object', () => {
    expect(decisionInputs(plan(3, read(0, 1)), 60_000)).to.deep.equal({
      ready: 0,
      unacked: null,
      running: 1,
      backlog: 1,
      concurrency: 2,
      min: 1,
      max: 4,
      cooldownMs: 60_000,
      cooldownLeftMs: 60_000,
    });
    expect(decisionInputs(plan(2, { ok: false, error: 'x' }), null)).to.deep.include({
      ready: null,
      running: null,
      backlog: null,
      cooldownMs: null,
    });
  });
});
