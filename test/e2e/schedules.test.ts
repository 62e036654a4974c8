/**
 * End to end: a scheduled DAG created paused (AIRTASKS_DAGS_PAUSED_ON_CREATION), a manual trigger that
 * waits queued, `dags unpause` releasing it and starting the schedule, `dags pause`, and `dags list/show`.
 */
import { expect } from 'chai';
import { E2eProject, runCli } from '../helpers/cli.js';
import { sleep } from '../helpers/engine.js';
import { requireService } from '../helpers/env.js';

const DAGS = {
  'sched.ts': `
import { dag } from 'airtasks';
export const d = dag('e2e_sched', { schedule: '@daily', startDate: '2024-01-01', maxActiveRuns: 1 });
d.bash('t', { command: 'echo "ds={{ ds }}"' });
`,
};

/** Midnight UTC of the day before the given time: the latest complete @daily interval's logical date. */
const yesterday = (t: number) => new Date(Math.floor(t / 86_400_000) * 86_400_000 - 86_400_000).toISOString();

describe('e2e: schedules, pause and unpause', function () {
  this.timeout(90_000);
  const project = new E2eProject();
  let env: NodeJS.ProcessEnv;

  const cli = async (args: string[]) => {
    const r = await runCli([...args, '--json'], env);
    return { ...r, json: r.stdout.trim() ? JSON.parse(r.stdout) : null };
  };
  const poll = async <T>(fn: () => Promise<T | undefined>, what: string): Promise<T> => {
    for (let i = 0; i < 100; i++) {
      const v = await fn();
      if (v !== undefined) return v;
      await sleep(300);
    }
    throw new Error(`gave up waiting for ${what}`);
  };

  before(async function () {
    await requireService(this, 'postgres');
    env = (await project.create(DAGS, { AIRTASKS_DAGS_PAUSED_ON_CREATION: 'true' })).env;
    await project.startEngine();
  });

  after(() => project.remove());

  it('creates the DAG paused, holds a manual run queued, and unpause starts it and the schedule', async () => {
    const listed = await poll(async () => {
      const r = await cli(['dags', 'list']);
      return r.json?.dags.find((d: { dagId: string }) => d.dagId === 'e2e_sched');
    }, 'the DAG to be parsed');
    expect(listed).to.include({ paused: true, schedule: '@daily', timezone: 'UTC', maxActiveRuns: 1 });

    const t = await cli(['trigger', 'dag', 'e2e_sched']);
    expect(t.code, t.stderr).to.equal(0);
    expect(t.json.state).to.equal('queued');
    expect(t.stderr).to.include('is paused').and.include('airtasks dags unpause e2e_sched');

    // A paused DAG gets no scheduled run, and the manual one is not started.
    const before = await cli(['runs', 'list', '--dag', 'e2e_sched']);
    const runIds = (r: typeof before) => (r.json as Array<{ runId: string }>).map((x) => x.runId);
    expect(runIds(before)).to.deep.equal([t.json.runId]);

    const lo = yesterday(Date.now());
    const u = await cli(['dags', 'unpause', 'e2e_sched']);
    expect(u.code, u.stderr).to.equal(0);
    expect(u.json).to.include({ dagId: 'e2e_sched', paused: false });

    const manual = await poll(async () => {
      const r = await cli(['runs', 'show', t.json.runId]);
      return r.json?.state === 'success' ? r.json : undefined;
    }, 'the manual run to succeed');
    expect(manual.state).to.equal('success');
    const hi = yesterday(Date.now());
    const scheduled = await poll(async () => {
      const r = await cli(['runs', 'list', '--dag', 'e2e_sched']);
      return runIds(r).find((id) => id.startsWith('scheduled__'));
    }, 'the scheduled run');
    expect([`scheduled__e2e_sched__${lo}`, `scheduled__e2e_sched__${hi}`]).to.include(scheduled);

    const show = await cli(['dags', 'show', 'e2e_sched']);
    expect(show.code, show.stderr).to.equal(0);
    expect(show.json.schedule).to.deep.include({ cron: '@daily', timezone: 'UTC', catchup: false });
    expect(show.json.paused).to.equal(false);
    // The next run covers today and is created at midnight tonight.
    const nextLogical = new Date(new Date(scheduled!.split('__')[2]!).getTime() + 86_400_000).toISOString();
    expect(show.json.nextLogicalDate).to.equal(nextLogical);
    expect(show.json.nextRunAt).to.equal(new Date(Date.parse(nextLogical) + 86_400_000).toISOString());
    expect(show.stdout).to.not.equal('');
  });

  it('pauses again, and refuses an unknown DAG with exit 3', async () => {
    const p = await cli(['dags', 'pause', 'e2e_sched']);
    expect(p.code, p.stderr).to.equal(0);
    expect(p.json).to.include({ dagId: 'e2e_sched', paused: true });
    const list = await cli(['dags', 'list']);
    expect(list.json.dags.find((d: { dagId: string }) => d.dagId === 'e2e_sched').paused).to.equal(true);

    const bad = await runCli(['dags', 'pause', 'no_such_dag'], env);
    expect(bad.code).to.equal(3);
    expect(bad.stderr).to.include('unknown DAG "no_such_dag"').and.include('e2e_sched');
  });
});
