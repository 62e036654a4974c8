/**
 * Schedules and concurrency limits with a real scheduler and worker (Postgres queue): scheduled runs
 * and their logical dates, catchup on/off, pause/unpause, max_active_runs, max_active_tasks, and two
 * schedulers racing to create the same scheduled runs.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'chai';
import { dag } from '../../src/engine/dag/builder.js';
import { VersionCache } from '../../src/engine/dag/versions.js';
import { silentLogger } from '../../src/core/logger.js';
import { createScheduledRuns } from '../../src/engine/scheduler/scheduled-runs.js';
import { Scheduler } from '../../src/engine/scheduler/scheduler.js';
import { dagHash } from '../../src/engine/dag/serialize.js';
import { getDag, setPaused, upsertDag } from '../../src/engine/store/dags.js';
import { getRun, listRuns, type RunRow } from '../../src/engine/store/runs.js';
import { listTaskInstances } from '../../src/engine/store/task-instances.js';
import { listDags, validateDags } from '../../src/services/dags.js';
import {
  insertDag,
  removeDir,
  startEngine,
  startRun,
  tempDir,
  waitFor,
  waitForRun,
  writeDagFile,
  type EngineHarness,
} from '../helpers/engine.js';
import { DATABASE_URL, requireService } from '../helpers/env.js';

describe('schedules and concurrency limits', function () {
  this.timeout(30_000);
  let engine: EngineHarness;
  let db: EngineHarness['db'];
  let broker: EngineHarness['broker'];
  let folder: string;
  let now = new Date('2024-01-04T05:00:00Z');

  before(async function () {
    await requireService(this, 'postgres');
    engine = await startEngine({
      scheduler: { scheduleIntervalMs: 100, clock: () => now },
      worker: { concurrency: 6, heartbeatMs: 200 },
    });
    ({ db, broker, folder } = engine);
  });

  after(() => engine?.stop());

  const runsOf = async (dagId: string): Promise<RunRow[]> =>
    (await listRuns(db, { dagId, limit: 1000 })).sort(
      (a, b) => a.logical_date.getTime() - b.logical_date.getTime(),
    );
  const scheduledDates = async (dagId: string) =>
    (await runsOf(dagId)).filter((r) => r.run_type === 'scheduled').map((r) => r.logical_date.toISOString());
  /** One schedule pass at the test clock, in this process: returns how many runs it created. */
  const schedulePass = () => createScheduledRuns(db, new VersionCache(db), now, silentLogger);

  it('creates a run per missed interval with catchup, each knowing its logical date, and runs them', async () => {
    now = new Date('2024-01-04T05:00:00Z');
    const d = dag('daily_catchup', {
      schedule: '@daily',
      startDate: '2024-01-01',
      catchup: true,
      params: { region: { type: 'string', default: 'eu' } },
    });
    d.bash('report', { command: 'echo "{{ ds }} {{ logical_date }} {{ run_id }} {{ conf.region }}"' });
    await insertDag(db, d);

    const expected = ['2024-01-01', '2024-01-02', '2024-01-03'].map((x) => `${x}T00:00:00.000Z`);
    await waitFor(async () => (await scheduledDates('daily_catchup')).length === 3, 'three scheduled runs');
    const runs = await runsOf('daily_catchup');
    expect(runs.map((r) => r.logical_date.toISOString())).to.deep.equal(expected);
    expect(runs.map((r) => r.run_id)).to.deep.equal(expected.map((x) => `scheduled__daily_catchup__${x}`));
    for (const r of runs) {
      const done = await waitForRun(db, r.run_id);
      expect(done.state).to.equal('success');
      const [ti] = await listTaskInstances(db, r.run_id);
      const iso = r.logical_date.toISOString();
      expect(ti!.output).to.equal(`${iso.slice(0, 10)} ${iso} ${r.run_id} eu`);
      expect(r.conf).to.deep.equal({ region: 'eu' }); // the params' defaults
    }
    const row = await getDag(db, 'daily_catchup');
    expect(row!.last_scheduled_logical_date?.toISOString()).to.equal(expected[2]);
    expect(row!.next_logical_date?.toISOString()).to.equal('2024-01-04T00:00:00.000Z');
    expect(row!.next_run_at?.toISOString()).to.equal('2024-01-05T00:00:00.000Z');
    // Nothing more is due at this time, however often the scheduler looks.
    expect(await schedulePass()).to.equal(0);
    expect(await scheduledDates('daily_catchup')).to.deep.equal(expected);
  });

  it('without catchup creates only the latest interval, then one run per interval as time passes', async () => {
    now = new Date('2024-01-04T05:00:00Z');
    const d = dag('daily_latest', { schedule: '0 0 * * *', startDate: '2024-01-01' });
    d.bash('t', { command: 'true' });
    await insertDag(db, d);
    await waitFor(async () => (await scheduledDates('daily_latest')).length === 1, 'the latest run');
    expect(await scheduledDates('daily_latest')).to.deep.equal(['2024-01-03T00:00:00.000Z']);

    // Two days later, catchup off: Jan 4 is skipped, Jan 5 (ended at Jan 6 00:00) is created.
    now = new Date('2024-01-06T00:00:00Z');
    await waitFor(async () => (await scheduledDates('daily_latest')).length === 2, 'the next run');
    expect(await scheduledDates('daily_latest')).to.deep.equal([
      '2024-01-03T00:00:00.000Z',
      '2024-01-05T00:00:00.000Z',
    ]);

    // dags list shows the schedule and the next run.
    const listing = await listDags({ databaseUrl: DATABASE_URL, schema: db.schema });
    const entry = listing.dags.find((x) => x.dagId === 'daily_latest');
    expect(entry).to.include({
      schedule: '0 0 * * *',
      timezone: 'UTC',
      paused: false,
      nextLogicalDate: '2024-01-06T00:00:00.000Z',
      nextRunAt: '2024-01-07T00:00:00.000Z',
    });
    expect(listing.dags.find((x) => x.dagId === 'daily_catchup')?.schedule).to.equal('@daily');
  });

  it('gives a paused DAG no scheduled runs, and resumes its schedule when unpaused', async () => {
    now = new Date('2024-01-04T05:00:00Z');
    const d = dag('pausable', { schedule: '@daily', startDate: '2024-01-01', catchup: true });
    d.bash('t', { command: 'true' });
    // Stored paused from the start, as with pausedOnCreation.
    const s = d.serialize('pausable.ts');
    await upsertDag(db, s, dagHash(s), true);
    expect(await schedulePass()).to.equal(0);
    for (let i = 0; i < 3; i++) await engine.scheduler.scheduleRuns();
    expect(await runsOf('pausable')).to.deep.equal([]);

    await setPaused(db, 'pausable', false, db.channel('events'));
    // At least three, then exactly these: a wrong count fails below with the dates made, not as a timeout.
    await waitFor(
      async () => (await scheduledDates('pausable')).length >= 3,
      'the missed runs after unpause',
    );
    expect(await scheduledDates('pausable')).to.deep.equal(
      ['2024-01-01', '2024-01-02', '2024-01-03'].map((x) => `${x}T00:00:00.000Z`),
    );
  });

  it('keeps a manual run of a paused DAG queued until the DAG is unpaused', async () => {
    const d = dag('paused_manual');
    d.bash('t', { command: 'echo ran' });
    const stored = await insertDag(db, d);
    await setPaused(db, stored.dagId, true, db.channel('events'));
    const runId = await startRun(db, stored);
    // Several scheduling passes, in this process: the run is not started.
    for (let i = 0; i < 3; i++) await engine.scheduler.tick();
    expect((await getRun(db, runId))!.state).to.equal('queued');
    expect(await listTaskInstances(db, runId)).to.deep.equal([]);

    await setPaused(db, stored.dagId, false, db.channel('events'));
    expect((await waitForRun(db, runId)).state).to.equal('success');
  });

  it('max_active_runs: further runs wait queued until a running one ends', async () => {
    const d = dag('one_at_a_time', { maxActiveRuns: 1 });
    d.bash('slow', { command: 'sleep 0.4' });
    const stored = await insertDag(db, d);
    const ids = [await startRun(db, stored), await startRun(db, stored), await startRun(db, stored)];
    let sawQueued = false;
    await waitFor(async () => {
      const states = await Promise.all(ids.map(async (id) => (await getRun(db, id))!.state));
      expect(states.filter((s) => s === 'running').length).to.be.at.most(1);
      if (states.includes('queued') && states.includes('running')) sawQueued = true;
      return states.every((s) => s === 'success');
    }, 'three runs, one after another');
    expect(sawQueued).to.equal(true);
    const runs = (await Promise.all(ids.map((id) => getRun(db, id)))).map((r) => r!);
    runs.sort((a, b) => a.started_at!.getTime() - b.started_at!.getTime());
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i]!.started_at!.getTime()).to.be.at.least(runs[i - 1]!.ended_at!.getTime());
    }
  });

  it('max_active_tasks: at no moment run more than N tasks of the DAG, across its runs', async () => {
    const log = path.join(folder, 'spans.log');
    await writeFile(log, '');
    const d = dag('capped', { maxActiveTasks: 2 });
    for (let i = 0; i < 5; i++) {
      d.bash(`p${i}`, {
        command: `echo "start $(date +%s%N)" >> ${log}; sleep 0.3; echo "end $(date +%s%N)" >> ${log}`,
      });
    }
    const stored = await insertDag(db, d);
    // Two runs of five parallel tasks, on a worker that could run six at once.
    const ids = [await startRun(db, stored), await startRun(db, stored)];
    for (const id of ids) expect((await waitForRun(db, id, 20_000)).state).to.equal('success');

    const events = (await readFile(log, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => l.split(' '))
      .map(([kind, ns]) => ({ kind: kind!, t: BigInt(ns!) }))
      .sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.kind === 'end' ? -1 : 1));
    expect(events.filter((e) => e.kind === 'start')).to.have.length(10);
    let running = 0;
    let most = 0;
    for (const e of events) {
      running += e.kind === 'start' ? 1 : -1;
      most = Math.max(most, running);
    }
    expect(most).to.be.at.most(2);
    expect(most).to.equal(2); // the limit is used, not undercut
  });

  it('two schedulers create each scheduled run exactly once', async () => {
    now = new Date('2024-01-04T00:00:00Z');
    // Hourly with catchup over three days: 72 runs, more than one pass creates per DAG.
    const d = dag('raced', {
      schedule: '0 * * * *',
      startDate: '2024-01-01',
      catchup: true,
      maxActiveRuns: 1,
    });
    d.bash('t', { command: 'true' });
    await insertDag(db, d);
    // This process's passes, a second scheduler's and the running one's, all at once.
    const other = new Scheduler({ db, broker, dagsFolder: null, clock: () => now });
    await Promise.all([
      ...Array.from({ length: 4 }, () => schedulePass()),
      ...Array.from({ length: 4 }, () => other.scheduleRuns().then(() => 0)),
    ]);
    await waitFor(async () => (await scheduledDates('raced')).length >= 72, '72 runs');
    // Passes keep going until nothing is due; then the set is exactly the 72 hours.
    while ((await schedulePass()) > 0);
    const dates = await scheduledDates('raced');
    expect(dates).to.have.length(72);
    expect(new Set(dates).size).to.equal(72);
    expect(dates[0]).to.equal('2024-01-01T00:00:00.000Z');
    expect(dates[71]).to.equal('2024-01-03T23:00:00.000Z');
    await other.stop();
  });

  it('refuses an invalid cron expression at parse time, naming the DAG and the file', async () => {
    const dags = await tempDir('airtasks-badcron-');
    try {
      await writeDagFile(
        dags,
        'bad.ts',
        `export const d = dag('bad_cron', { schedule: '0 25 * * *', startDate: '2024-01-01' });\nd.bash('t', { command: 'true' });\n`,
      );
      const r = await validateDags({ dagsFolder: dags });
      expect(r.dags).to.deep.equal([]);
      expect(r.errors).to.have.length(1);
      expect(r.errors[0]!.fileloc).to.equal('bad.ts');
      expect(r.errors[0]!.message).to.match(/DAG "bad_cron": invalid cron expression "0 25 \* \* \*"/);
    } finally {
      await removeDir(dags);
    }
  });
});
