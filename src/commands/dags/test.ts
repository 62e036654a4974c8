import { Args, Flags } from '@oclif/core';
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js';
import { runExitCode } from '../../cli/run-exit-code.js';
import { confFlags, confText } from '../../cli/conf-flags.js';
import { testDag, type LocalRunResult } from '../../services/local-test.js';

export default class DagsTest extends BaseCommand<typeof DagsTest> {
  static override summary =
    'Run a DAG once in this process, with no database or broker, printing each task’s log.';
  static override description = `For DAG authors and CI: same trigger rules, retries, operators and callbacks as the workers. The conf is checked against the DAG's params first (exit 2). Runs that trigger tasks start are run here too, after the DAG's own run; the exit code is the DAG's own outcome.

${EXIT_CODES_HELP}`;
  static override examples = [`<%= config.bin %> dags test example_conf --conf '{"message": 1}'`];
  static override args = { dagId: Args.string({ required: true, description: 'DAG id' }) };
  static override flags = {
    ...confFlags,
    variables: Flags.string({
      summary: 'Variables the tasks may read: a JSON object (there is no database).',
    }),
  };

  async run(): Promise<LocalRunResult> {
    const f = this.flags;
    const r = await testDag({
      dagsFolder: f['dags-folder'],
      dagId: this.args.dagId,
      confText: await confText(f),
      variablesText: f.variables,
      onLog: (task, tryNumber, stream, line) =>
        this.progress(`[${task}#${tryNumber}]${stream === 'stdout' ? '' : ` (${stream})`} ${line}`),
      onTaskChange: (task, state, tryNumber) =>
        this.progress(`--- ${task}: ${state}${tryNumber > 1 ? ` (try ${tryNumber})` : ''}`),
    });
    for (const t of r.tasks) this.log(`${t.state.padEnd(16)} ${t.taskId}${t.error ? `  ${t.error}` : ''}`);
    if (r.triggeredRuns?.length) {
      const byState = new Map<string, number>();
      for (const t of r.triggeredRuns) byState.set(t.state, (byState.get(t.state) ?? 0) + 1);
      const counts = [...byState].map(([s, n]) => `${n} ${s}`).join(', ');
      this.log(`triggered runs: ${r.triggeredRuns.length} (${counts})`);
    }
    this.log(`${r.dagId}: ${r.state}`);
    this.setExitCode(runExitCode(r.state));
    return r;
  }
}
