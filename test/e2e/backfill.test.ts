/** `airtasks backfill` from the CLI through real daemons: --dry-run and --wait with --json, list, cancel, exit codes. */
import { expect } from 'chai';
import { E2eProject, runCli } from '../helpers/cli.js';
import { requireService } from '../helpers/env.js';

const DAGS = {
  'daily.ts': `
import { dag } from 'airtasks';

export const d = dag('e2e_bf', { schedule: '@daily', startDate: '2024-01-01' });
d.bash('work', { command: 'test "{{ ds }}" != 2024-01-03' });

export const m = dag('e2e_bf_manual');
m.bash('t', { command: 'true' });
`,
};

describe('e2e: backfill', function () {
  this.timeout(90_000);
  const project = new E2eProject();
  let env: NodeJS.ProcessEnv;

  before(async function () {
    await requireService(this, 'postgres');
    env = (await project.create(DAGS)).env;
    await project.startEngine();
  });

  after(() => project.remove());

  const range = ['--from', '2024-01-01', '--to', '2024-01-05'];

  it('refuses bad input with the documented exit codes', async () => {
    const cases: Array<[string[], number, RegExp]> = [
      [['backfill', 'nope', ...range], 3, /unknown DAG "nope"/],
      [['backfill', 'e2e_bf', '--from', '2024-02-01', '--to', '2024-01-01'], 2, /--from \(.*\) is after/],
      [['backfill', 'e2e_bf', '--from', '2024-13-01', '--to', '2024-01-01'], 2, /--from "2024-13-01"/],
      [['backfill', 'e2e_bf_manual', ...range], 2, /has no schedule/],
      [['backfill', 'e2e_bf', ...range, '--max-runs', '3'], 2, /more than 3 runs.*raise --max-runs/],
      [['backfill', 'e2e_bf', ...range, '--reprocess', 'some'], 2, /reprocess/],
      [['backfill', 'cancel', '999'], 3, /unknown backfill 999/],
      [['backfill', 'cancel', 'x'], 2, /invalid backfill id "x"/],
    ];
    for (const [args, code, message] of cases) {
      const r = await runCli(args, env);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).to.equal(code);
      // oclif wraps long messages: compare them as one line.
      expect(r.stderr.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' '), args.join(' ')).to.match(message);
    }
    const json = await runCli(['backfill', 'nope', ...range, '--json'], env);
    expect(json.code).to.equal(3);
    expect(JSON.parse(json.stdout).error.exitCode).to.equal(3);
  });

  it('lists the runs in a dry run, then runs them and exits with their outcome', async () => {
    const dry = await runCli(['backfill', 'e2e_bf', ...range, '--dry-run'], env);
    expect(dry.code, dry.stderr).to.equal(0);
    expect(dry.stdout).to.match(/LOGICAL DATE\s+RUN\s+EXISTS\s+ACTION/);
    expect(dry.stdout).to.match(
      /2024-01-03T00:00:00.000Z\s+scheduled__e2e_bf__2024-01-03T00:00:00.000Z\s+-\s+create/,
    );
    expect(dry.stdout).to.contain('dry run: 5 run(s) in the range, 0 exist: 5 to create');
    const dryJson = JSON.parse(
      (await runCli(['backfill', 'e2e_bf', ...range, '--dry-run', '--json'], env)).stdout,
    );
    expect(dryJson).to.include({ backfillId: null, dagId: 'e2e_bf', dryRun: true, reprocess: 'none' });
    expect(dryJson.counts).to.include({ total: 5, existing: 0, create: 5 });

    const run = await runCli(
      ['backfill', 'e2e_bf', ...range, '--max-active-runs', '2', '--wait', '--json'],
      env,
    );
    expect(run.code, run.stderr).to.equal(10); // the run of Jan 3 failed
    const out = JSON.parse(run.stdout);
    expect(out).to.include({ outcome: 'failed', maxActiveRuns: 2 });
    expect(out.runs.map((r: { state: string }) => r.state)).to.deep.equal([
      'success',
      'success',
      'failed',
      'success',
      'success',
    ]);
    const list = JSON.parse((await runCli(['backfill', 'list', '--json'], env)).stdout);
    expect(list[0]).to.deep.include({
      backfillId: out.backfillId,
      state: 'done',
      runs: { success: 4, failed: 1 },
    });
    const done = await runCli(['backfill', 'cancel', String(out.backfillId)], env);
    expect(done.code).to.equal(6);

    // Again with --reprocess none: nothing to do, so nothing to wait for.
    const again = await runCli(['backfill', 'e2e_bf', ...range, '--wait'], env);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.contain(
      '5 exist (4 success, 1 failed): 0 to create, 0 to re-run, 5 left as they are',
    );
    expect(again.stderr).to.contain('1 run(s) of the range stay failed or cancelled');
  });
});
