import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import {
  DAG_IMPORT,
  insertDag,
  insertDagFile,
  startEngine,
  startRun,
  waitFor,
  waitForRun,
  writeDagFile,
  type EngineHarness,
  type StoredDag,
} from '../helpers/engine.js';
import { dag } from '../../src/engine/dag/builder.js';
import { clearTasks } from '../../src/engine/store/run-control.js';
import { getRun } from '../../src/engine/store/runs.js';
import { endRunsIfOver } from '../../src/engine/store/run-progress.js';
import { markRunning } from '../../src/engine/store/run-passes.js';
import { createTaskInstancesOfRuns } from '../../src/engine/store/task-instances.js';
import { freshDb, requireService } from '../helpers/env.js';

const DAGS = `${DAG_IMPORT}
export const small = dag('end_small');
for (let i = 0; i < 6; i++) small.node('t' + i, { run: () => i });
`;

/**
 * Runs end because their last results are announced, not because a scheduler's periodic sweep finds them:
 * here the sweep runs once, at start. Many small runs ending together announce themselves while the
 * scheduler is busy reading; a pass that cleared its to-do set after that read lost them (until the
 * sweep, 5 s later by default).
 */
describe('runs end when their last task does, without the periodic sweep', function () {
  this.timeout(60_000);
  let engine: EngineHarness;
  let dags: Map<string, StoredDag>;

  before(async function () {
    await requireService(this, 'postgres');
    await requireService(this, 'rabbitmq');
    engine = await startEngine({
      broker: 'rabbitmq',
      scheduler: { sweepIntervalMs: 600_000 },
      worker: { concurrency: 8 },
      setup: async (d, folder) => {
        await writeFile(path.join(folder, 'package.json'), JSON.stringify({ type: 'module' }));
        await writeDagFile(folder, 'end.ts', DAGS);
        dags = await insertDagFile(d, folder, 'end.ts');
      },
    });
  });

  after(() => engine?.stop());

  it('ends every one of 40 small runs triggered together', async () => {
    const ids = [];
    for (let i = 0; i < 40; i++) ids.push(await startRun(engine.db, dags.get('end_small')!));
    const runs = await Promise.all(ids.map((id) => waitForRun(engine.db, id, 30_000)));
    expect(runs.map((r) => r.state)).to.deep.equal(ids.map(() => 'success'));
  });
});

/**
 * A worker ends a run whose every task succeeded itself (endRunsIfOver), announcing it as the scheduler
 * would; any other run that is over goes to the schedulers. Never on a stale view: a task cleared while
 * the statement waits for the run's row leaves the run running.
 */
describe('a worker ending runs (endRunsIfOver)', function () {
  this.timeout(30_000);
  let db: Awaited<ReturnType<typeof freshDb>>;
  let stored: StoredDag;
  const heard: string[] = [];

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    const d = dag('ends');
    d.bash('a', { command: 'true' });
    d.bash('b', { command: 'true' });
    stored = await insertDag(db, d);
    const listener = db.listen([db.channel('events')], (_ch, payload) => heard.push(payload));
    await listener.ready;
  });

  after(() => db?.drop());

  /** A running run whose tasks are in the given states. */
  async function runWith(a: string, b: string): Promise<string> {
    const runId = await startRun(db, stored);
    await markRunning(db, [runId]);
    await createTaskInstancesOfRuns(db, [{ runId, tasks: stored.serialized.tasks }]);
    await db.query(
      `UPDATE task_instances SET state = CASE task_id WHEN 'a' THEN $2 ELSE $3 END WHERE run_id = $1`,
      [runId, a, b],
    );
    return runId;
  }

  /** Waits for a NOTIFY heard after the first `since` ones (a run's creation announces it too). */
  const announced = (payload: string, since: number) =>
    waitFor(() => heard.slice(since).includes(payload), `NOTIFY ${payload}`, 5000);

  it('ends runs that succeeded; tells the schedulers of those over otherwise, or with a callback to queue', async () => {
    const succeeded = await runWith('success', 'success');
    const failed = await runWith('success', 'failed');
    const withCallback = await runWith('success', 'success');
    const running = await runWith('success', 'running');
    await announced(running, 0);
    const since = heard.length;
    const ended = await endRunsIfOver(
      db,
      db.channel('events'),
      [succeeded, failed, withCallback, running],
      [succeeded, failed, running],
    );
    expect(ended).to.deep.equal([succeeded]);
    expect(await getRun(db, succeeded)).to.include({ state: 'success' });
    expect((await getRun(db, succeeded))!.ended_at).to.be.instanceOf(Date);
    await announced(`run:${succeeded}`, since);
    await announced(failed, since);
    await announced(withCallback, since);
    for (const id of [failed, withCallback, running])
      expect(await getRun(db, id)).to.include({ state: 'running' });
    expect(heard.slice(since)).to.not.include(running);
    expect(heard.slice(since), 'no queued run: the schedulers need not hear of it').to.not.include(succeeded);
    // Twice is once: the run has ended.
    expect(await endRunsIfOver(db, db.channel('events'), [succeeded], [succeeded])).to.deep.equal([]);
  });

  it('leaves a run to the schedulers when a task of it is cleared while it decides', async () => {
    const runId = await runWith('success', 'success');
    await announced(runId, 0);
    const since = heard.length;
    const c = await db.pool.connect();
    try {
      await c.query('BEGIN');
      const cleared = await clearTasks(c, runId, ['a'], db.channel('events'));
      expect(cleared.outcome).to.equal('cleared');
      // The statement reads the tasks (all succeeded: the clear has not committed) and then waits for the
      // run's row, which the clear holds.
      const deciding = endRunsIfOver(db, db.channel('events'), [runId], [runId]);
      await waitFor(
        async () =>
          (
            await db.query(
              `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%AS version%'`,
            )
          ).rowCount === 1,
        'the statement to wait for the run row',
      );
      await c.query('COMMIT');
      expect(await deciding).to.deep.equal([]);
    } finally {
      c.release();
    }
    expect(await getRun(db, runId)).to.include({ state: 'running' });
    await announced(runId, since);
  });
});
