/**
 * A worker's liveness, with the worker in this process: its heartbeat runs in a thread of its own, so a
 * main thread blocked by synchronous work (as a node task's loop blocks it) goes on heartbeating.
 */
import { expect } from 'chai';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { Worker } from '../../src/engine/worker/worker.js';
import { removeDir, tempDir } from '../helpers/engine.js';
import { freshDb, requireService } from '../helpers/env.js';

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
});
