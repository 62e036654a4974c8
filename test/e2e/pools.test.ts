/** Pools from the CLI: `pools set | list | delete` with their exit codes, and a pooled DAG run through real daemons. */
import { expect } from 'chai';
import { E2eProject, runCli } from '../helpers/cli.js';
import { requireService } from '../helpers/env.js';

const DAGS = {
  'pooled.ts': `
import { dag } from 'airtasks';

export const p = dag('e2e_pooled', { defaults: { pool: 'licenses' } });
const a = p.bash('a', { command: 'echo a', priorityWeight: 5 });
p.bash('b', { command: 'echo b', poolSlots: 2, upstream: a });

export const m = dag('e2e_pool_missing');
m.bash('x', { command: 'echo x', pool: 'absent' });
m.bash('y', { command: 'echo y', pool: 'licenses', poolSlots: 3 });
`,
};

describe('e2e: pools', function () {
  this.timeout(60_000);
  const project = new E2eProject();
  let env: NodeJS.ProcessEnv;

  before(async function () {
    await requireService(this, 'postgres');
    env = (await project.create(DAGS)).env;
  });

  after(() => project.remove());

  it('sets, lists and deletes pools, with documented exit codes for bad input', async () => {
    const set = await runCli(['pools', 'set', 'licenses', '2', '--description', 'tool licenses'], env);
    expect(set.code, set.stderr).to.equal(0);
    expect(set.stdout).to.contain('pool licenses: 2 slots');

    const list = await runCli(['pools', 'list'], env);
    expect(list.stdout).to.match(/POOL\s+SLOTS\s+RUNNING\s+QUEUED\s+OPEN\s+WAITING\s+DESCRIPTION/);
    expect(list.stdout).to.match(/licenses\s+2\s+0\s+0\s+2\s+0\s+tool licenses/);
    const json = JSON.parse((await runCli(['pools', 'list', '--json'], env)).stdout);
    expect(json).to.deep.equal([
      {
        name: 'licenses',
        slots: 2,
        running: 0,
        queued: 0,
        open: 2,
        waiting: 0,
        description: 'tool licenses',
      },
    ]);

    const bad = await runCli(['pools', 'set', 'licenses', 'lots'], env);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.contain('invalid slot count "lots"');
    const missing = await runCli(['pools', 'delete', 'nope'], env);
    expect(missing.code).to.equal(3);
    expect(missing.stderr).to.contain('no pool "nope"');

    expect((await runCli(['pools', 'set', 'scratch', '1'], env)).code).to.equal(0);
    expect((await runCli(['pools', 'delete', 'scratch'], env)).code).to.equal(0);
    const names = JSON.parse((await runCli(['pools', 'list', '--json'], env)).stdout).map(
      (p: { name: string }) => p.name,
    );
    expect(names).to.deep.equal(['licenses']);
  });

  it('runs a DAG whose tasks take pool slots, and shows the pool in `dags show`', async () => {
    await project.startEngine();

    const show = await runCli(['dags', 'show', 'e2e_pooled'], env);
    expect(show.code, show.stderr).to.equal(0);
    expect(show.stdout).to.match(/b\s+bash\s+worker\s+licenses x2\s+1/);

    const run = await runCli(['trigger', 'dag', 'e2e_pooled', '--wait', '--json'], env);
    expect(run.code, run.stderr).to.equal(0);
    expect(JSON.parse(run.stdout).state).to.equal('success');
  });

  it('warns at trigger time about tasks that will wait for a missing or too small pool', async () => {
    const r = await runCli(['trigger', 'dag', 'e2e_pool_missing', '--json'], env);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.contain(
      'pool "absent" does not exist: task(s) x wait until `airtasks pools set absent <slots>`',
    );
    expect(r.stderr).to.contain(
      'pool "licenses" has 2 slot(s): task(s) y (needs 3) wait until it is made bigger',
    );
    const runId = JSON.parse(r.stdout).runId;
    expect((await runCli(['runs', 'cancel', runId], env)).code).to.equal(0);
  });
});
