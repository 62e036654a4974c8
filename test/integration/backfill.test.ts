/**
 * Backfill through the real scheduler and worker (Postgres queue): a month of a daily DAG with runs
 * already present (dry run, then the real one with reprocess none, then failed), the backfill's bound on
 * active runs (with one scheduler and with two), a scheduler creating the same runs at the same time, cancel
 * and list, and bad input.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { silentLogger } from '../../src/core/logger.js';
import { ExitCode } from '../../src/core/errors.js';
import { dag } from '../../src/engine/dag/builder.js';
import { VersionCache } from '../../src/engine/dag/versions.js';
import { createScheduledRuns } from '../../src/engine/scheduler/scheduled-runs.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { scheduledRunId } from '../../src/engine/scheduler/schedules.js';
import { setPaused } from '../../src/engine/store/dags.js';
import { createRuns, listRuns, type RunRow } from '../../src/engine/store/runs.js';
import { listTaskInstances } from '../../src/engine/store/task-instances.js';
import { backfill, type BackfillOptions } from '../../src/services/backfill.js';
import { cancelBackfill, listBackfills } from '../../src/services/backfill-control.js';
import { insertDag, startEngine, waitForRun, type EngineHarness, type StoredDag } from '../helpers/engine.js';
import { DATABASE_URL, requireService } from '../helpers/env.js';

const JAN = Array.from({ length: 31 }, (_, i) => `2024-01-${String(i + 1).padStart(2, '0')}`);
const iso = (day: string) => `${day}T00:00:00.000Z`;

describe('backfill', function () {
  this.timeout(90_000);
  let engine: EngineHarness;
  let db: EngineHarness['db'];
  // The scheduler's clock: catchup-less DAGs get only the run of 2024-02-29 from it, outside January.
  const clock = () => new Date('2024-03-01T05:00:00Z');

  before(async function () {
    await requireService(this, 'postgres');
    engine = await startEngine({
      scheduler: { scheduleIntervalMs: 100, clock },
      worker: { concurrency: 8, heartbeatMs: 200 },
    });
    db = engine.db;
  });

  after(() => engine?.stop());

  const conn = () => ({ databaseUrl: DATABASE_URL, schema: db.schema });
  const run = (o: Omit<BackfillOptions, 'databaseUrl' | 'schema'>) => backfill({ ...conn(), ...o });
  const runsOf = async (dagId: string): Promise<RunRow[]> =>
    (await listRuns(db, { dagId, limit: 1000 }))
      .filter((r) => r.logical_date.toISOString().startsWith('2024-01'))
      .sort((a, b) => a.logical_date.getTime() - b.logical_date.getTime());
  /** Lines of a file the task appends its logical date to, counted per date of January. */
  const doneCounts = async (file: string) => {
    const counts = new Map<string, number>();
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const l of text.split('\n').filter((x) => x.startsWith('2024-01')))
      counts.set(l, (counts.get(l) ?? 0) + 1);
    return counts;
  };
  /** A daily DAG whose task fails for the dates listed in failFile and appends its date to doneFile. */
  const dailyDag = async (id: string, o: { catchup?: boolean; maxActiveRuns?: number } = {}) => {
    const failFile = path.join(engine.folder, `${id}.fail`);
    const doneFile = path.join(engine.folder, `${id}.done`);
    await writeFile(failFile, '');
    const d = dag(id, { schedule: '@daily', startDate: '2024-01-01', ...o });
    d.bash('work', {
      command: `sleep 0.2; if grep -qx "{{ ds }}" "${failFile}"; then exit 1; fi; echo "{{ ds }}" >> "${doneFile}"`,
    });
    return { stored: await insertDag(db, d), failFile, doneFile };
  };
  /** Creates the runs of these days as the scheduler would have, and waits for them to end. */
  const presentRuns = async (s: StoredDag, days: string[]) => {
    const ids = days.map((x) => scheduledRunId(s.dagId, new Date(iso(x))));
    await createRuns(
      db,
      days.map((x, i) => ({
        runId: ids[i]!,
        dagId: s.dagId,
        dagHash: s.hash,
        conf: {},
        runType: 'scheduled',
        logicalDate: new Date(iso(x)),
      })),
      db.channel('events'),
    );
    for (const id of ids) await waitForRun(db, id, 30_000);
  };
  /**
   * Samples how many of the DAG's backfill runs are running until stopped; returns the most seen. (The
   * runs' started_at is their scheduler transaction's start, a little before they really started, so
   * their recorded intervals overlap more than the runs did.)
   */
  const sampleRunning = (dagId: string) => {
    let max = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        const r = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM dag_runs WHERE dag_id = $1 AND backfill_id IS NOT NULL AND state = 'running'`,
          [dagId],
        );
        max = Math.max(max, r.rows[0]!.n);
        await new Promise((res) => setTimeout(res, 10));
      }
    })();
    return async () => {
      stop = true;
      await loop;
      return max;
    };
  };

  it('backfills a month of a daily DAG with runs present: dry run, then none, then failed', async () => {
    // The DAG allows one active run; the backfill runs under its own bound of 3 instead.
    const { stored, failFile, doneFile } = await dailyDag('bf_month', { maxActiveRuns: 1 });
    await writeFile(failFile, '2024-01-12\n2024-01-20\n');
    await presentRuns(stored, ['2024-01-03', '2024-01-07', '2024-01-12', '2024-01-20']);
    const before = new Map((await runsOf('bf_month')).map((r) => [r.run_id, r]));
    expect([...before.values()].map((r) => r.state)).to.deep.equal([
      'success',
      'success',
      'failed',
      'failed',
    ]);

    const dry = await run({ dagId: 'bf_month', from: '2024-01-01', to: '2024-01-31', dryRun: true });
    expect(dry.backfillId).to.equal(null);
    expect(dry.counts).to.deep.equal({
      total: 31,
      existing: 4,
      existingByState: { success: 2, failed: 2 },
      create: 27,
      reprocess: 0,
      skip: 4,
      notEnded: 0,
    });
    expect(dry.runs.map((r) => r.logicalDate)).to.deep.equal(JAN.map(iso));
    expect(dry.runs.map((r) => r.runId)).to.deep.equal(
      JAN.map((x) => scheduledRunId('bf_month', new Date(iso(x)))),
    );
    expect(dry.runs[11]).to.include({ existingState: 'failed', action: 'skip' });
    const dryFailed = await run({
      dagId: 'bf_month',
      from: '2024-01-01',
      to: '2024-01-31',
      reprocess: 'failed',
      dryRun: true,
    });
    expect(dryFailed.counts).to.include({ create: 27, reprocess: 2, skip: 2 });
    // A dry run writes nothing.
    expect(await runsOf('bf_month')).to.have.length(4);
    expect(await listBackfills({ ...conn(), dagId: 'bf_month' })).to.deep.equal([]);

    const notices: string[] = [];
    const sampled = sampleRunning('bf_month');
    const real = await run({
      dagId: 'bf_month',
      from: '2024-01-01',
      to: '2024-01-31',
      maxActiveRuns: 3,
      wait: true,
      onNotice: (m) => notices.push(m),
    });
    const most = await sampled();
    expect(real.outcome).to.equal('success');
    expect(real.counts).to.include({ create: 27, skip: 4 });
    expect(notices.join('\n')).to.match(/2 run\(s\) of the range stay failed/);
    let rows = await runsOf('bf_month');
    // Each logical date has exactly one run, with the scheduler's id.
    expect(rows.map((r) => r.logical_date.toISOString())).to.deep.equal(JAN.map(iso));
    expect(rows.map((r) => r.run_id)).to.deep.equal(real.runs.map((r) => r.runId));
    // Runs that were present are untouched.
    for (const [id, old] of before) {
      const now = rows.find((r) => r.run_id === id)!;
      expect([now.state, now.ended_at, now.backfill_id]).to.deep.equal([old.state, old.ended_at, null]);
    }
    const created = rows.filter((r) => r.backfill_id === real.backfillId);
    expect(created).to.have.length(27);
    expect(created.every((r) => r.state === 'success' && r.run_type === 'scheduled')).to.equal(true);
    // At most 3 of the backfill's runs ran at once, though the DAG allows only one.
    expect(most).to.be.at.most(3);
    expect(most).to.be.at.least(2);
    // Every date but the two failed ones did its work exactly once.
    const done = await doneCounts(doneFile);
    expect([...done.keys()].sort()).to.deep.equal(
      JAN.filter((x) => x !== '2024-01-12' && x !== '2024-01-20'),
    );
    expect([...done.values()].every((n) => n === 1)).to.equal(true);
    const [listed] = await listBackfills({ ...conn(), dagId: 'bf_month' });
    expect(listed).to.include({
      backfillId: real.backfillId,
      state: 'done',
      maxActiveRuns: 3,
      reprocess: 'none',
    });
    expect(listed!.runs).to.deep.equal({ success: 27 });

    // The failure is fixed: --reprocess failed runs the two failed dates again, and nothing else.
    await writeFile(failFile, '');
    const again = await run({
      dagId: 'bf_month',
      from: '2024-01-01',
      to: '2024-01-31',
      reprocess: 'failed',
      wait: true,
    });
    expect(again.outcome).to.equal('success');
    expect(again.counts).to.deep.include({ existing: 31, create: 0, reprocess: 2, skip: 29 });
    expect(again.runs.filter((r) => r.action === 'reprocess').map((r) => r.logicalDate)).to.deep.equal([
      iso('2024-01-12'),
      iso('2024-01-20'),
    ]);
    rows = await runsOf('bf_month');
    expect(rows).to.have.length(31);
    expect(rows.every((r) => r.state === 'success')).to.equal(true);
    const rerun = rows.find((r) => r.logical_date.toISOString() === iso('2024-01-12'))!;
    expect(rerun.backfill_id).to.equal(again.backfillId);
    // The try history stays: the task's second try is the one that succeeded.
    expect((await listTaskInstances(db, rerun.run_id))[0]).to.include({ state: 'success', try_number: 2 });
    const doneAfter = await doneCounts(doneFile);
    expect([...doneAfter.keys()].sort()).to.deep.equal(JAN);
    expect([...doneAfter.values()].every((n) => n === 1)).to.equal(true);
    // The first backfill's runs were left as they were.
    const firstOnes = rows.filter((r) => r.backfill_id === real.backfillId);
    expect(firstOnes).to.have.length(27);

    // --reprocess all would run every one of them again.
    const dryAll = await run({
      dagId: 'bf_month',
      from: '2024-01-01',
      to: '2024-01-31',
      reprocess: 'all',
      dryRun: true,
    });
    expect(dryAll.counts).to.include({ reprocess: 31, skip: 0, create: 0 });
  });

  it('makes one run per logical date while schedulers create the same runs at the same time', async () => {
    // catchup: the scheduler in the harness and two more passes here create January's runs too.
    const { doneFile } = await dailyDag('bf_race', { catchup: true });
    const pass = () => createScheduledRuns(db, new VersionCache(db), clock(), silentLogger);
    const [r] = await Promise.all([
      run({ dagId: 'bf_race', from: '2024-01-01', to: '2024-01-31', maxActiveRuns: 4 }),
      pass(),
      pass(),
    ]);
    expect(r.counts.create + r.counts.skip).to.equal(31);
    const rows = await runsOf('bf_race');
    expect(rows.map((x) => x.logical_date.toISOString())).to.deep.equal(JAN.map(iso));
    // The backfill's own are those it reported created; the rest are the scheduler's.
    const mine = r.runs.filter((x) => x.action === 'create').map((x) => x.runId);
    expect(rows.filter((x) => x.backfill_id === r.backfillId).map((x) => x.run_id)).to.deep.equal(mine);
    for (const x of rows) await waitForRun(db, x.run_id, 60_000);
    const done = await doneCounts(doneFile);
    expect([...done.keys()].sort()).to.deep.equal(JAN);
    expect([...done.values()].every((n) => n === 1)).to.equal(true);
  });

  it("keeps the backfill's bound with two schedulers starting its runs", async () => {
    const { doneFile } = await dailyDag('bf_two');
    const other = new Scheduler({
      db,
      broker: engine.broker,
      dagsFolder: null,
      sweepIntervalMs: 500,
      scheduleIntervalMs: 100,
      clock,
    });
    await other.start();
    try {
      const sampled = sampleRunning('bf_two');
      const r = await run({
        dagId: 'bf_two',
        from: '2024-01-01',
        to: '2024-01-12',
        maxActiveRuns: 2,
        wait: true,
      });
      const most = await sampled();
      expect(r.outcome).to.equal('success');
      expect(most).to.be.at.most(2);
      const done = await doneCounts(doneFile);
      expect([...done.keys()].sort()).to.deep.equal(JAN.slice(0, 12));
      expect([...done.values()].every((n) => n === 1)).to.equal(true);
    } finally {
      await other.stop();
    }
  });

  it('cancels a backfill: its queued runs never start; a DAG runs one backfill at a time', async () => {
    await dailyDag('bf_cancel');
    await setPaused(db, 'bf_cancel', true, db.channel('events'));
    const notices: string[] = [];
    const r = await run({
      dagId: 'bf_cancel',
      from: '2024-01-01',
      to: '2024-01-10',
      onNotice: (m) => notices.push(m),
    });
    expect(notices.join('\n')).to.match(/is paused/);
    expect(r.runs.every((x) => x.state === 'queued')).to.equal(true);
    const second = await run({ dagId: 'bf_cancel', from: '2024-01-11', to: '2024-01-12' }).catch((e) => e);
    expect(second).to.include({ exitCode: ExitCode.CONFLICT });
    expect((second as Error).message).to.match(new RegExp(`backfill cancel ${r.backfillId}`));

    const c = await cancelBackfill({ ...conn(), backfillId: r.backfillId! });
    expect(c).to.include({ state: 'cancelled', alreadyCancelled: false });
    expect(c.cancelledRuns).to.have.length(10);
    expect((await cancelBackfill({ ...conn(), backfillId: r.backfillId! })).alreadyCancelled).to.equal(true);
    await setPaused(db, 'bf_cancel', false, db.channel('events'));
    const rows = await runsOf('bf_cancel');
    expect(rows.map((x) => x.state)).to.deep.equal(Array(10).fill('cancelled'));
    const [listed] = await listBackfills({ ...conn(), dagId: 'bf_cancel' });
    expect(listed).to.include({ state: 'cancelled' });
    expect(listed!.runs).to.deep.equal({ cancelled: 10 });
    // Cancelled runs are re-run by --reprocess failed (the DAG is unpaused now).
    const again = await run({
      dagId: 'bf_cancel',
      from: '2024-01-01',
      to: '2024-01-10',
      reprocess: 'failed',
      maxActiveRuns: 5,
      wait: true,
    });
    expect(again).to.include({ outcome: 'success' });
    expect(again.counts).to.include({ reprocess: 10 });
    const done = await cancelBackfill({ ...conn(), backfillId: again.backfillId! }).catch((e) => e);
    expect(done).to.include({ exitCode: ExitCode.CONFLICT });
  });

  it('refuses bad input with a message that says what to do', async () => {
    const noSchedule = dag('bf_manual');
    noSchedule.bash('t', { command: 'true' });
    await insertDag(db, noSchedule);
    await dailyDag('bf_bad');
    const err = (o: Partial<BackfillOptions>) =>
      run({ dagId: 'bf_bad', from: '2024-01-01', to: '2024-01-31', ...o }).then(
        () => expect.fail('expected an error'),
        (e: Error & { exitCode: number }) => e,
      );
    expect(await err({ dagId: 'nope' })).to.include({ exitCode: ExitCode.NOT_FOUND });
    const manual = await err({ dagId: 'bf_manual' });
    expect(manual).to.include({ exitCode: ExitCode.USAGE });
    expect(manual.message).to.match(/has no schedule/);
    const reversed = await err({ from: '2024-02-01' });
    expect(reversed).to.include({ exitCode: ExitCode.USAGE });
    expect(reversed.message).to.match(/after the end of the range/);
    const big = await err({ maxRuns: 10 });
    expect(big).to.include({ exitCode: ExitCode.USAGE });
    expect(big.message).to.match(/more than 10 runs/);
    expect(await err({ from: '2024-13-01' })).to.include({ exitCode: ExitCode.USAGE });
    expect(await err({ maxActiveRuns: 0 })).to.include({ exitCode: ExitCode.USAGE });
    // A range before the schedule's start has no runs: said, not refused.
    const notices: string[] = [];
    const before = await run({
      dagId: 'bf_bad',
      from: '2023-01-01',
      to: '2023-01-31',
      dryRun: true,
      onNotice: (m) => notices.push(m),
    });
    expect(before.counts.total).to.equal(0);
    expect(notices.join('\n')).to.match(/no run of DAG "bf_bad" falls in the range: .* starts 2024-01-01/);
    // Nothing was written by any of them.
    expect(await listBackfills({ ...conn(), dagId: 'bf_bad' })).to.deep.equal([]);
    expect(await runsOf('bf_bad')).to.deep.equal([]);
  });
});
