/**
 * End to end: `airtasks why` as a user runs it (one line per waiting task, --json, exit 3 for an unknown
 * run), and `airtasks scheduler --metrics-port` serving /metrics, against a scheduler subprocess.
 */
import { expect } from 'chai';
import { E2eProject, runCli } from '../helpers/cli.js';
import { requireService } from '../helpers/env.js';

const DAGS = {
  'orphans.ts': `
import { dag } from 'airtasks';

export const orphans = dag('why_e2e');
const first = orphans.bash('first', { command: 'true', queue: 'why_e2e_nobody' });
orphans.bash('second', { command: 'true', upstream: first });
`,
};

describe('e2e: why and --metrics-port', function () {
  this.timeout(90_000);
  const project = new E2eProject();
  let env: NodeJS.ProcessEnv;
  let metricsUrl: string;

  before(async function () {
    await requireService(this, 'postgres');
    env = (await project.create(DAGS)).env;
    const scheduler = await project.start(
      ['scheduler', '--scan-interval', '200', '--metrics-port', '0'],
      'dags folder parsed',
    );
    metricsUrl = /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"/.exec(scheduler.output)![1]!;
  });

  after(() => project.remove());

  it('says what holds each task, in lines and as JSON, and exits 3 for an unknown run', async () => {
    const t = await runCli(['trigger', 'dag', 'why_e2e'], env);
    expect(t.code, t.stderr).to.equal(0);
    const runId = t.stdout.trim();
    let json: { runState: string; tasks: Array<{ taskId: string; reason: { kind: string }; text: string }> };
    for (let i = 0; ; i++) {
      const r = await runCli(['why', runId, '--json'], env);
      expect(r.code, r.stderr).to.equal(0);
      json = JSON.parse(r.stdout) as typeof json;
      if (json.tasks[0]?.reason.kind === 'no_worker' || i > 100) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    expect(json.runState).to.equal('running');
    expect(json.tasks.map((x) => [x.taskId, x.reason.kind])).to.deep.equal([
      ['first', 'no_worker'],
      ['second', 'upstream'],
    ]);
    const lines = await runCli(['why', runId], env);
    expect(lines.code).to.equal(0);
    expect(lines.stdout.trim().split('\n')).to.deep.equal([
      'first   queued        queued on why_e2e_nobody, and no live worker consumes that queue: start one (airtasks worker -q why_e2e_nobody)',
      'second  none          waits for upstream first (queued) [all_success]',
    ]);
    const unknown = await runCli(['why', 'no_such_run'], env);
    expect(unknown.code).to.equal(3);
    expect(unknown.stderr).to.include('unknown run "no_such_run"');
  });

  it('serves /metrics from the scheduler', async () => {
    const text = await (await fetch(metricsUrl)).text();
    expect(text).to.match(/^airtasks_queue_tasks\{queue="why_e2e_nobody",state="queued"\} 1$/m);
    expect(text).to.match(/^airtasks_queue_workers\{queue="why_e2e_nobody"\} 0$/m);
    expect(text).to.match(/^airtasks_scheduler_pass_duration_seconds_count\{result="ok"\} [1-9]\d*$/m);
  });
});
