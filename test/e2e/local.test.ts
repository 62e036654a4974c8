/** The commands that need no service: dags validate, dags test, tasks test, on the shipped examples and broken files. */
import { expect } from 'chai';
import path from 'node:path';
import { ROOT, runCli, tempDagsFolder } from '../helpers/cli.js';

const EXAMPLES = path.join(ROOT, 'examples', 'dags');
// The 100-run fan-out of the multi-trigger example is proven in test/integration/triggers.test.ts; here a few do.
const CONF: Record<string, string> = {
  example_multi_trigger: '{"count": 3, "sleep": 0}',
  example_mapped: '{"count": 3, "sleep": 0}',
};
const NO_SERVICES = { AIRTASKS_DATABASE_URL: '', AIRTASKS_BROKER_URL: '' };

describe('e2e: commands without services', function () {
  this.timeout(60_000);

  it('validates the shipped examples', async () => {
    const r = await runCli(['dags', 'validate', '--dags-folder', EXAMPLES, '--json'], NO_SERVICES);
    expect(r.code, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout);
    expect(report.errors).to.deep.equal([]);
    expect(report.dags.map((d: { dagId: string }) => d.dagId)).to.include.members([
      'example_interleaved',
      'example_conf',
    ]);
  });

  it('runs every shipped example with dags test', async function () {
    this.timeout(180_000); // a dozen CLI runs, each importing the examples; slow on a loaded 2-core machine
    const ids = JSON.parse(
      (await runCli(['dags', 'validate', '--dags-folder', EXAMPLES, '--json'], NO_SERVICES)).stdout,
    )
      .dags.map((d: { dagId: string }) => d.dagId)
      .filter((id: string) => !/docker|gpu/.test(id)); // container examples need a Docker engine
    for (const id of ids) {
      const r = await runCli(
        ['dags', 'test', id, '--dags-folder', EXAMPLES, '--conf', CONF[id] ?? '{"message": 42}', '--json'],
        NO_SERVICES,
      );
      expect(r.code, `${id}: ${r.stderr}`).to.equal(0);
      const out = JSON.parse(r.stdout);
      expect(out.state).to.equal('success');
      // A branch skips the paths it did not choose.
      const allowed = id === 'example_branching' ? ['success', 'skipped'] : ['success'];
      for (const t of out.tasks) expect(t.state, `${id}.${t.taskId}`).to.be.oneOf(allowed);
    }
  });

  it('dags test follows a branch: the chosen paths run, the others are skipped, the join runs', async () => {
    const run = async (conf: string) => {
      const r = await runCli(
        ['dags', 'test', 'example_branching', '--dags-folder', EXAMPLES, '--conf', conf, '--json'],
        NO_SERVICES,
      );
      expect(r.code, r.stderr).to.equal(0);
      const out = JSON.parse(r.stdout);
      return Object.fromEntries(out.tasks.map((t: { taskId: string; state: string }) => [t.taskId, t.state]));
    };
    expect(await run('{"rows": 10}')).to.deep.equal({
      count_rows: 'success',
      choose_path: 'success',
      incremental_load: 'success',
      bulk_load: 'skipped',
      vacuum: 'skipped',
      notify: 'skipped',
      report: 'success',
    });
    expect(await run('{"rows": 5000, "notify": true}')).to.deep.equal({
      count_rows: 'success',
      choose_path: 'success',
      incremental_load: 'skipped',
      bulk_load: 'success',
      vacuum: 'success',
      notify: 'success',
      report: 'success',
    });
  });

  it('dags test fails a branch task that chooses an unknown task, with a clear error', async () => {
    const dags = await tempDagsFolder({
      'b.ts': `import { dag } from 'airtasks';
export const d = dag('local_bad_branch');
const pick = d.branch('pick', { run: () => 'nowhere' });
d.bash('here', { command: 'echo here', upstream: pick });
`,
    });
    try {
      const r = await runCli(
        ['dags', 'test', 'local_bad_branch', '--dags-folder', dags.dir, '--json'],
        NO_SERVICES,
      );
      expect(r.code).to.equal(10);
      const out = JSON.parse(r.stdout);
      const pick = out.tasks.find((t: { taskId: string }) => t.taskId === 'pick');
      expect(pick.state).to.equal('failed');
      expect(pick.error).to.equal(
        'branch task "pick" chose "nowhere", which is not one of its direct downstream tasks (here)',
      );
    } finally {
      await dags.remove();
    }
  });

  it('dags test fails a task whose output is over the cap, as a worker does', async () => {
    const dags = await tempDagsFolder({
      'o.ts': `import { dag } from 'airtasks';
export const d = dag('local_big_output', { defaults: { retries: 0 } });
const big = d.node('big', { run: () => 'x'.repeat(300 * 1024) });
d.bash('after', { command: 'echo never', upstream: big });
`,
    });
    try {
      const r = await runCli(
        ['dags', 'test', 'local_big_output', '--dags-folder', dags.dir, '--json'],
        NO_SERVICES,
      );
      expect(r.code, r.stderr).to.equal(10);
      const out = JSON.parse(r.stdout);
      expect(out.state).to.equal('failed');
      expect(
        Object.fromEntries(out.tasks.map((t: { taskId: string; state: string }) => [t.taskId, t.state])),
      ).to.deep.equal({ big: 'failed', after: 'upstream_failed' });
      const big = out.tasks.find((t: { taskId: string }) => t.taskId === 'big');
      expect(big.error).to.match(
        /^the task's output is \d+ bytes, over the cap of 262144 bytes: store large data elsewhere/,
      );
    } finally {
      await dags.remove();
    }
  });

  it('reports a failing DAG with exit 10, retrying as configured, and prints task logs', async () => {
    const dags = await tempDagsFolder({
      'f.ts': `import { dag } from 'airtasks';
export const d = dag('local_failing');
const a = d.bash('a', { command: 'echo trying {{ try_number }}; exit 4', retries: 1, retryDelay: '10ms' });
d.bash('b', { command: 'echo never', upstream: a });
d.bash('cleanup', { command: 'echo cleaning', upstream: a, triggerRule: 'all_done' });
`,
    });
    try {
      const r = await runCli(['dags', 'test', 'local_failing', '--dags-folder', dags.dir], NO_SERVICES);
      expect(r.code).to.equal(10);
      expect(r.stderr).to.include('trying 1').and.include('trying 2').and.include('cleaning');
      expect(r.stdout).to.match(/failed\s+a\s+bash exited with code 4/);
      expect(r.stdout).to.match(/upstream_failed\s+b/);
      expect(r.stdout).to.match(/success\s+cleanup/);
    } finally {
      await dags.remove();
    }
  });

  it('runs one task alone with tasks test', async () => {
    const r = await runCli(
      [
        'tasks',
        'test',
        'example_conf',
        'print_conf',
        '--dags-folder',
        EXAMPLES,
        '--conf',
        '{"message": "solo"}',
      ],
      NO_SERVICES,
    );
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stderr).to.include('Hello from message #solo');
  });

  it('flags broken DAG files with exit 5 and names each problem', async () => {
    const dags = await tempDagsFolder({
      'good.ts': `import { dag } from 'airtasks';\nexport const g = dag('good'); g.bash('a', { command: 'true' });\n`,
      'syntax.ts': `import { dag } from 'airtasks';\nexport const s = dag('syntax' ;\n`,
      'throws.ts': `throw new Error('boom at import');\n`,
      'cycle.ts': `import { dag } from 'airtasks';
export const c = dag('cyclic');
const x = c.bash('x', { command: 'true' });
const y = c.bash('y', { command: 'true', upstream: x });
x.setUpstream(y);
`,
      'dup.ts': `import { dag } from 'airtasks';\nexport const d = dag('dup'); d.bash('a', { command: 'true' }); d.bash('a', { command: 'true' });\n`,
      'unknown.ts': `import { dag } from 'airtasks';\nexport const u = dag('unknown_up'); u.task('a', 'bash', { command: 'true' }); (u.tasks.get('a') as any).upstreamIds.add('ghost');\n`,
    });
    try {
      const r = await runCli(['dags', 'validate', '--dags-folder', dags.dir, '--json'], NO_SERVICES);
      expect(r.code).to.equal(5);
      const report = JSON.parse(r.stdout);
      const byFile = Object.fromEntries(
        report.errors.map((e: { fileloc: string; message: string }) => [e.fileloc, e.message]),
      );
      expect(Object.keys(byFile).sort()).to.deep.equal([
        'cycle.ts',
        'dup.ts',
        'syntax.ts',
        'throws.ts',
        'unknown.ts',
      ]);
      expect(byFile['cycle.ts']).to.match(/cycle: (x -> y -> x|y -> x -> y)/);
      expect(byFile['dup.ts']).to.include('duplicate task id "a"');
      expect(byFile['throws.ts']).to.include('boom at import');
      expect(byFile['unknown.ts']).to.include('unknown upstream task "ghost"');
      expect(report.dags.map((d: { dagId: string }) => d.dagId)).to.deep.equal(['good']);
    } finally {
      await dags.remove();
    }
  });
});
