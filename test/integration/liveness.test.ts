/**
 * A worker's liveness, with the worker in this process: its heartbeat runs in a thread of its own, so a
 * main thread blocked by synchronous work (as a node task's loop blocks it) goes on heartbeating; a claim
 * the heartbeat finds lost still stops its task; and that try's late result records when its process really
 * ended, after the try was declared lost (`runs show` shows it).
 */
import { expect } from 'chai';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { dag } from '../../src/engine/dag/builder.js';
import { lostTry } from '../../src/engine/lost-try.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { finishTry } from '../../src/engine/store/results.js';
import { getTaskInstance, listTries } from '../../src/engine/store/task-instances.js';
import { Worker } from '../../src/engine/worker/worker.js';
import { showRun } from '../../src/services/runs.js';
import { runCli } from '../helpers/cli.js';
import { insertDag, removeDir, startRun, tempDir, waitFor, waitForRun } from '../helpers/engine.js';
import { DATABASE_URL, freshDb, requireService } from '../helpers/env.js';

const HEARTBEAT_MS = 200;

describe('worker liveness', function () {
  this.timeout(30_000);
  let db: Awaited<ReturnType<typeof freshDb>>;
  let broker: PgQueueBroker;
  let scheduler: Scheduler;
  let worker: Worker;
  let folder: string;

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    folder = await tempDir('airtasks-liveness-');
    // Every heartbeat, by the database's clock.
    await db.query(`
      CREATE TABLE beats (at timestamptz NOT NULL);
      CREATE FUNCTION log_beat() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN INSERT INTO beats VALUES (clock_timestamp()); RETURN NULL; END $$;
      CREATE TRIGGER beat AFTER UPDATE OF heartbeat_at ON workers FOR EACH ROW EXECUTE FUNCTION log_beat();`);
    broker = new PgQueueBroker(db, { pollMs: 100 });
    // Zombies are reaped by hand below (finishTry, as the scheduler's reaping does).
    scheduler = new Scheduler({
      db,
      broker,
      dagsFolder: null,
      sweepIntervalMs: 500,
      zombieThresholdMs: 60_000,
    });
    await scheduler.start();
    worker = new Worker({
      db,
      broker,
      queues: ['worker'],
      concurrency: 2,
      dagsFolder: folder,
      heartbeatMs: HEARTBEAT_MS,
      graceMs: 1000,
    });
    await worker.start();
  });

  after(async () => {
    await worker?.stop();
    await scheduler?.stop();
    await db?.drop();
    await removeDir(folder);
  });

  const dbNow = async () => (await db.query<{ t: Date }>('SELECT clock_timestamp() AS t')).rows[0]!.t;

  it('heartbeats while its main thread is blocked by synchronous work', async () => {
    const from = await dbNow();
    // What a node task's synchronous loop does to the worker's event loop.
    const end = Date.now() + 2000;
    while (Date.now() < end);
    const to = await dbNow();
    const beats = (
      await db.query<{ at: Date }>('SELECT at FROM beats WHERE at > $1 AND at < $2 ORDER BY at', [from, to])
    ).rows.map((r) => r.at.getTime());
    const times = [from.getTime(), ...beats, to.getTime()];
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Every HEARTBEAT_MS, give or take a loaded machine; the main thread would have left a 2 s hole.
    expect(Math.max(...gaps), `gaps between heartbeats: ${gaps.join(', ')} ms`).to.be.below(1000);
  });

  it('stops a task whose claim was reaped, and records when its process really ended', async () => {
    const d = dag('late_end', { defaults: { retries: 0 } });
    // The first try outlasts its claim; the next one ends at once.
    d.bash('work', {
      command: '[ "$AIRTASKS_TRY_NUMBER" = 1 ] && sleep 20; echo "try $AIRTASKS_TRY_NUMBER"',
    });
    const runId = await startRun(db, await insertDag(db, d));
    const first = await waitFor(async () => {
      const t = await getTaskInstance(db, runId, 'work');
      return t?.state === 'running' && t;
    }, 'the first try to run');
    // The scheduler's reaping (zombies.ts), as if this worker had gone silent.
    const m = { runId, taskId: 'work', tryNumber: 1 };
    const reaped = lostTry(`worker ${worker.id} lost: no heartbeat for 30s`);
    expect(await finishTry(db, m, first.claim_token!, reaped, db.channel('events'))).to.equal(true);

    // No NOTIFY tells the worker: its heartbeat finds the claim lost, the task stops, its result is fenced out.
    const [lost] = await waitFor(async () => {
      const tries = await listTries(db, runId, 'work');
      return tries[0]?.process_ended_at ? tries : undefined;
    }, "the first try's real end to be recorded");
    expect(lost).to.include({ try_number: 1, state: 'failed', worker_id: worker.id });
    expect(lost!.process_ended_at!.getTime()).to.be.above(lost!.ended_at!.getTime());
    // Stopped by the lost claim, not left to its 20 s.
    expect(lost!.process_ended_at!.getTime() - lost!.ended_at!.getTime()).to.be.below(10_000);

    expect((await waitForRun(db, runId)).state).to.equal('success');
    const shown = await showRun({ databaseUrl: DATABASE_URL, schema: db.schema, dagsFolder: folder, runId });
    const tries = shown.tasks[0]!.tries;
    expect(tries.map((t) => [t.tryNumber, t.state, t.processEndedAt !== null])).to.deep.equal([
      [1, 'failed', true],
      [2, 'success', false],
    ]);
    expect(tries[0]!.processEndedAt).to.equal(lost!.process_ended_at!.toISOString());
    // The text output says so (the built CLI).
    const env = {
      AIRTASKS_DATABASE_URL: DATABASE_URL,
      AIRTASKS_BROKER_URL: '',
      AIRTASKS_DB_SCHEMA: db.schema,
      AIRTASKS_DAGS_FOLDER: folder,
    };
    const late = new RegExp(
      `declared lost at ${tries[0]!.endedAt}, really ended at ${tries[0]!.processEndedAt} \\(\\d+\\.\\d s later\\)`,
    );
    const show = await runCli(['runs', 'show', runId], env);
    expect(show.stdout, show.stderr).to.match(
      new RegExp(`work try 1 on worker ${worker.id}: ${late.source}`),
    );
    const logs = await runCli(['tasks', 'logs', runId, 'work'], env);
    expect(logs.stdout, logs.stderr).to.match(
      new RegExp(`--- try 1 on worker \\S+ \\(started \\S+; ${late.source}`),
    );
  });
});
