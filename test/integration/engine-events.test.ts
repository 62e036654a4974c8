/**
 * The engine's event stream (core/events.ts) through a real scheduler and worker sharing one stream: the
 * sequence of a run with a success, a failure retried, and its end; a duplicated message tells nothing.
 */
import { expect } from 'chai';
import { EngineEventStream, type EngineEventName, type EngineEvents } from '../../src/core/events.js';
import { dag } from '../../src/engine/dag/builder.js';
import { getTaskInstance } from '../../src/engine/store/task-instances.js';
import { Worker } from '../../src/engine/worker/worker.js';
import {
  insertDag,
  sleep,
  startEngine,
  startRun,
  waitFor,
  waitForRun,
  type EngineHarness,
} from '../helpers/engine.js';

type Told = { name: EngineEventName; e: EngineEvents[EngineEventName] };

describe('engine events', function () {
  this.timeout(30_000);
  let engine: EngineHarness;
  const events = new EngineEventStream();
  const told: Told[] = [];
  events.onAny((name, e) => told.push({ name, e }));

  before(async () => {
    engine = await startEngine({ scheduler: { events }, worker: { events } });
  });
  after(async () => {
    await engine?.stop();
  });

  /** The run's events, as `name task#try` lines (scheduler passes left out). */
  function ofRun(runId: string): string[] {
    return told
      .filter(({ e }) => 'runId' in e && e.runId === runId)
      .map(({ name, e }) => {
        const t = e as { taskId?: string; tryNumber?: number; state?: string };
        return [name, t.taskId && `${t.taskId}#${t.tryNumber}`, t.state].filter(Boolean).join(' ');
      });
  }

  it('tells a run with a success, a retried failure and its end, in order', async () => {
    const d = dag('events');
    const ok = d.bash('ok', { command: 'echo fine' });
    d.bash('flaky', {
      upstream: ok,
      command: 'if [ {{ try_number }} -lt 2 ]; then echo boom >&2; exit 3; fi; echo second',
      retries: 1,
      retryDelay: '50ms',
    });
    const stored = await insertDag(engine.db, d);
    const runId = await startRun(engine.db, stored);
    const run = await waitForRun(engine.db, runId);
    expect(run.state).to.equal('success');
    await waitFor(() => ofRun(runId).includes('run.ended success'), 'the run to be told ended', 5000);

    expect(ofRun(runId)).to.deep.equal([
      'run.started',
      'task.started ok#1',
      'task.finished ok#1 success',
      'task.started flaky#1',
      'task.retried flaky#1',
      'task.started flaky#2',
      'task.finished flaky#2 success',
      'run.ended success',
    ]);
    const retried = told.find((t) => t.name === 'task.retried' && (t.e as { runId: string }).runId === runId)!
      .e as EngineEvents['task.retried'];
    expect(retried).to.include({ dagId: 'events', queue: 'worker', workerId: engine.worker.id, lost: false });
    expect(retried.error).to.equal('bash exited with code 3');
    expect(retried.nextTryAt.getTime()).to.be.greaterThan(retried.at.getTime());
    const finished = told.find(
      (t) => t.name === 'task.finished' && (t.e as { taskId: string }).taskId === 'ok',
    )!.e as EngineEvents['task.finished'];
    expect(finished.durationMs).to.be.a('number').and.at.least(0);
    expect(finished).to.not.have.property('error');

    const passes = told.filter((t) => t.name === 'scheduler.pass');
    expect(passes).to.have.length.greaterThan(0);
    expect((passes[0]!.e as EngineEvents['scheduler.pass']).durationMs).to.be.a('number');
  });

  it('tells nothing of a duplicated message', async () => {
    const d = dag('events_once');
    d.bash('count', { command: 'sleep 0.5; echo counted' });
    const stored = await insertDag(engine.db, d);
    const runId = await startRun(engine.db, stored);
    const message = { queue: 'worker', priority: 1, body: { runId, taskId: 'count', tryNumber: 1 } };
    await waitFor(
      async () => (await getTaskInstance(engine.db, runId, 'count'))?.state === 'running',
      'the task to run',
    );
    await engine.broker.publish([message, message]);
    expect((await waitForRun(engine.db, runId)).state).to.equal('success');
    await engine.broker.publish([message]);
    await waitFor(
      async () => {
        const [depth] = await engine.broker.depths(['worker']);
        return depth!.ready === 0 && (depth!.unacked ?? 0) === 0;
      },
      'the duplicates to be consumed',
      5000,
    );
    await sleep(300);
    expect(ofRun(runId)).to.deep.equal([
      'run.started',
      'task.started count#1',
      'task.finished count#1 success',
      'run.ended success',
    ]);
  });

  it('tells a worker coming up and going down', async () => {
    const w = new Worker({
      db: engine.db,
      broker: engine.broker,
      queues: ['events-idle'],
      concurrency: 1,
      dagsFolder: engine.folder,
      events,
    });
    await w.start();
    await w.stop();
    const mine = told.filter(({ e }) => 'workerId' in e && e.workerId === w.id && !('runId' in e));
    expect(mine.map((t) => t.name)).to.deep.equal(['worker.up', 'worker.down']);
    expect(mine[0]!.e).to.include({ concurrency: 1 });
    expect((mine[0]!.e as EngineEvents['worker.up']).queues).to.deep.equal(['events-idle']);
  });

  it('costs nothing and survives a listener that throws', () => {
    const s = new EngineEventStream();
    let built = 0;
    s.emit('scheduler.pass', () => (built++, { durationMs: 1, ok: true, at: new Date() }));
    expect(built).to.equal(0);
    const got: number[] = [];
    const offBad = s.on('scheduler.pass', () => {
      throw new Error('listener bug');
    });
    const off = s.on('scheduler.pass', (e) => got.push(e.durationMs));
    s.emit('scheduler.pass', () => (built++, { durationMs: 2, ok: true, at: new Date() }));
    expect([built, got]).to.deep.equal([1, [2]]);
    off();
    offBad();
    expect(s.listening('scheduler.pass')).to.equal(false);
  });
});
