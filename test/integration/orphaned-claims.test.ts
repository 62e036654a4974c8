/**
 * A worker gives back the claims it holds in the database without knowing (their answer was lost), and
 * only those: a claim that commits while the worker's question is on its way is its own, and giving it
 * back would run the task a second time beside the try running here.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { silentLogger } from '../../src/core/logger.js';
import { PgQueueBroker } from '../../src/engine/broker/pg-queue.js';
import { dag } from '../../src/engine/dag/builder.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { claimTask } from '../../src/engine/store/claims.js';
import { getTaskInstance } from '../../src/engine/store/task-instances.js';
import { HeldTries } from '../../src/engine/worker/held-tries.js';
import { releaseOrphanedClaims } from '../../src/engine/worker/orphaned-claims.js';
import { insertDag, startRun, waitFor } from '../helpers/engine.js';
import { freshDb, requireService, uniqueName } from '../helpers/env.js';

describe('orphaned claims', function () {
  this.timeout(30_000);
  let db: Awaited<ReturnType<typeof freshDb>>;
  let scheduler: Scheduler;

  before(async function () {
    await requireService(this, 'postgres');
    db = await freshDb();
    // The scheduler queues the tasks; no worker listens on their queue, the tests claim them by hand.
    scheduler = new Scheduler({ db, broker: new PgQueueBroker(db, { pollMs: 100 }), dagsFolder: null });
    await scheduler.start();
  });

  after(async () => {
    await scheduler?.stop();
    await db?.drop();
  });

  /** A run's only task, queued and claimable. */
  async function queuedTask() {
    const d = dag(uniqueName('orphans').replace(/-/g, '_'), { defaults: { queue: 'nobody', retries: 0 } });
    d.bash('work', { command: 'true' });
    const runId = await startRun(db, await insertDag(db, d));
    await waitFor(
      async () => (await getTaskInstance(db, runId, 'work'))?.state === 'queued',
      'the task queued',
    );
    return { runId, taskId: 'work', tryNumber: 1 };
  }

  it('gives back a claim whose answer the worker never had, as a lost try', async () => {
    const m = await queuedTask();
    const workerId = uniqueName('w');
    expect(await claimTask(db, m, workerId, randomUUID())).to.not.equal(null);
    expect(
      await releaseOrphanedClaims(db, db.channel('events'), workerId, new HeldTries(), silentLogger),
    ).to.equal(1);
    const ti = await getTaskInstance(db, m.runId, m.taskId);
    expect(ti?.state).to.not.equal('running');
    expect(ti?.lost_tries).to.equal(1);
  });

  it('keeps a claim whose answer arrived while its question waited for the database', async () => {
    const m = await queuedTask();
    const workerId = uniqueName('w');
    const held = new HeldTries();
    const client = await db.pool.connect();
    try {
      // The question has to wait: the table is locked by the transaction that will claim the task.
      await client.query('BEGIN');
      await client.query('LOCK TABLE task_instances IN ACCESS EXCLUSIVE MODE');
      const sweep = releaseOrphanedClaims(db, db.channel('events'), workerId, held, silentLogger);
      // (Asked on another connection: a transaction sees the activity of its start.)
      await waitFor(async () => {
        const r = await db.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%worker_id = $1%'`,
        );
        return r.rowCount === 1;
      }, 'the question waiting for the lock');
      // Meanwhile this worker claims the task, and the claim's answer arrives (as intake.ts does it).
      const token = randomUUID();
      held.claiming.add(token);
      expect(await claimTask(client, m, workerId, token)).to.not.equal(null);
      held.hold(m, token);
      held.claiming.delete(token);
      await client.query('COMMIT');
      expect(await sweep).to.equal(0);
      const ti = await getTaskInstance(db, m.runId, m.taskId);
      expect(ti?.state).to.equal('running');
      expect(ti?.claim_token).to.equal(token);
    } finally {
      client.release();
    }
  });
});
