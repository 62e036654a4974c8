/**
 * End to end: `runs cancel` and `tasks clear` as a user runs them, against a scheduler and a worker
 * (subprocesses, Postgres queue), with their exit codes: 0 done, 3 unknown run or task, 6 a state that
 * does not allow it, and `trigger dag --wait` exiting 11 when its run is cancelled.
 */
import { expect } from 'chai';
import pg from 'pg';
import { E2eProject, runCli } from '../helpers/cli.js';
import { requireService, uniqueName } from '../helpers/env.js';

const DAGS = {
  'control.ts': `
import { dag } from 'airtasks';

export const slow = dag('ctl_slow');
const wait = slow.bash('wait', { command: 'sleep {{ conf.seconds }}; echo waited' });
slow.bash('after', { command: 'echo after', upstream: wait });

export const quick = dag('ctl_quick');
const first = quick.bash('first', { command: 'echo "first {{ try_number }}"' });
quick.bash('second', { command: 'echo "second {{ try_number }}"', upstream: first });
`,
};

describe('e2e: runs cancel and tasks clear', function () {
  this.timeout(90_000);
  const project = new E2eProject();
  const schema = project.schema;
  let env: NodeJS.ProcessEnv;
  let db: pg.Client;

  const taskState = async (runId: string, taskId: string) =>
    (
      await db.query(`SELECT state FROM "${schema}".task_instances WHERE run_id = $1 AND task_id = $2`, [
        runId,
        taskId,
      ])
    ).rows[0]?.state as string | undefined;

  const until = async (what: string, fn: () => Promise<boolean>) => {
    for (let i = 0; i < 400; i++) {
      if (await fn()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  before(async function () {
    await requireService(this, 'postgres');
    env = (await project.create(DAGS)).env;
    // A heartbeat far apart: the cancelled task must stop because the worker was told, not by polling.
    await project.startEngine(['--heartbeat-interval', '60000']);
    db = await project.db();
    await until('the DAGs to be parsed', async () => {
      const r = await runCli(['dags', 'list', '--json'], env);
      return r.code === 0 && r.stdout.includes('ctl_quick') && r.stdout.includes('ctl_slow');
    });
  });

  after(() => project.remove());

  it('cancel: trigger --wait exits 11, a second cancel exits 0, an ended run exits 6, an unknown one 3', async () => {
    const runId = uniqueName('cancel');
    const waiting = runCli(
      ['trigger', 'dag', 'ctl_slow', '--run-id', runId, '--conf', '{"seconds": 60}', '--wait', '--json'],
      env,
    );
    await until('the task to run', async () => (await taskState(runId, 'wait')) === 'running');

    const c = await runCli(['runs', 'cancel', runId, '--json'], env);
    expect(c.code, c.stderr).to.equal(0);
    const out = JSON.parse(c.stdout);
    expect(out).to.include({ runId, state: 'cancelled', previousState: 'running', alreadyCancelled: false });
    expect(out.tasks).to.have.deep.members([
      { taskId: 'wait', from: 'running' },
      { taskId: 'after', from: 'none' },
    ]);

    const w = await waiting;
    expect(w.code, w.stderr).to.equal(11);
    expect(JSON.parse(w.stdout)).to.include({ runId, state: 'cancelled' });

    const again = await runCli(['runs', 'cancel', runId], env);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.include('already cancelled');

    const show = JSON.parse((await runCli(['runs', 'show', runId, '--json'], env)).stdout);
    expect(show.error).to.match(/cancelled/);
    const wait = show.tasks.find((t: { taskId: string }) => t.taskId === 'wait');
    expect(wait.state).to.equal('cancelled');
    expect(wait.tries.map((t: { state: string }) => t.state)).to.deep.equal(['cancelled']);
    // The worker stopped the task (its heartbeat is a minute away) and logged why.
    await until('the worker to stop the task', async () =>
      project.daemons[1]!.output.includes('stopping task'),
    );

    const done = uniqueName('done');
    const q = await runCli(['trigger', 'dag', 'ctl_quick', '--run-id', done, '--wait'], env);
    expect(q.code, q.stderr).to.equal(0);
    const ended = await runCli(['runs', 'cancel', done], env);
    expect(ended.code).to.equal(6);
    expect(ended.stderr).to.include('already ended (success)');

    const unknown = await runCli(['runs', 'cancel', 'no_such_run'], env);
    expect(unknown.code).to.equal(3);
  });

  it('clear: re-runs a finished run from a task (--downstream); refuses a running task with exit 6', async () => {
    const runId = uniqueName('clear');
    const q = await runCli(['trigger', 'dag', 'ctl_quick', '--run-id', runId, '--wait'], env);
    expect(q.code, q.stderr).to.equal(0);

    const c = await runCli(['tasks', 'clear', runId, 'first', '--downstream', '--json'], env);
    expect(c.code, c.stderr).to.equal(0);
    const out = JSON.parse(c.stdout);
    expect(out).to.include({ runId, previousRunState: 'success', runState: 'running' });
    expect(out.tasks.map((t: { taskId: string }) => t.taskId).sort()).to.deep.equal(['first', 'second']);
    await until('the run to succeed again', async () => {
      const r = await db.query(`SELECT state FROM "${schema}".dag_runs WHERE run_id = $1`, [runId]);
      return r.rows[0]?.state === 'success';
    });
    const logs = await runCli(['tasks', 'logs', runId, 'second'], env);
    expect(logs.stdout).to.include('second 1').and.to.include('second 2');

    const unknownTask = await runCli(['tasks', 'clear', runId, 'nope'], env);
    expect(unknownTask.code).to.equal(3);
    expect(unknownTask.stderr).to.include('first, second');

    const slowRun = uniqueName('busy');
    const t = await runCli(
      ['trigger', 'dag', 'ctl_slow', '--run-id', slowRun, '--conf', '{"seconds": 60}'],
      env,
    );
    expect(t.code, t.stderr).to.equal(0);
    await until('the task to run', async () => (await taskState(slowRun, 'wait')) === 'running');
    const busy = await runCli(['tasks', 'clear', slowRun, 'wait'], env);
    expect(busy.code).to.equal(6);
    expect(busy.stderr).to.include('"wait" is running');
    expect(await taskState(slowRun, 'wait')).to.equal('running');
    expect((await runCli(['runs', 'cancel', slowRun], env)).code).to.equal(0);
  });
});
