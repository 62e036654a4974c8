import { Args, Flags } from '@oclif/core';
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js';
import { runExitCode } from '../../cli/run-exit-code.js';
import { confFlags, confText } from '../../cli/conf-flags.js';
import { triggerDag, WaitTimeout, type RunSummary, type TaskSummary } from '../../services/trigger.js';

export default class TriggerDag extends BaseCommand<typeof TriggerDag> {
  static override stackRelay = true;
  static override summary = 'Start a run of a DAG.';
  static override description = `Prints the run id. With --wait, follows the run (task state changes on stderr) and exits with its outcome.

${EXIT_CODES_HELP}`;
  static override examples = [
    `<%= config.bin %> trigger dag example_interleaved --wait`,
    `<%= config.bin %> trigger dag example_conf --conf '{"message": "hi"}' --wait --json`,
  ];
  static override args = { dagId: Args.string({ required: true, description: 'DAG id' }) };
  static override flags = {
    ...confFlags,
    'run-id': Flags.string({ summary: 'Run id (default: manual__<time>_<random>).' }),
    wait: Flags.boolean({ summary: 'Wait for the run to end; exit code = outcome.' }),
    timeout: Flags.integer({
      summary: 'With --wait: give up after this many seconds (exit 12).',
      min: 1,
      dependsOn: ['wait'],
    }),
  };

  async run(): Promise<RunSummary> {
    const f = this.flags;
    const conf = await confText(f);
    let result: RunSummary;
    try {
      result = await triggerDag({
        ...this.connection(),
        dagId: this.args.dagId,
        confText: conf,
        runId: f['run-id'],
        wait: f.wait,
        timeoutMs: f.timeout ? f.timeout * 1000 : undefined,
        // stderr even under --json (oclif's warn() is silent there): a run that will not start is news.
        onNotice: (m) => process.stderr.write(`Warning: ${m}\n`),
        onTaskChange: (t: TaskSummary) =>
          this.progress(`  ${t.taskId}: ${t.state}${t.tryNumber > 1 ? ` (try ${t.tryNumber})` : ''}`),
      });
    } catch (err) {
      if (err instanceof WaitTimeout && this.jsonEnabled()) {
        this.setExitCode(err.exitCode);
        return err.summary;
      }
      throw err;
    }
    if (f.wait) {
      this.setExitCode(runExitCode(result.state));
      this.log(`${result.runId} ${result.state}`);
    } else {
      this.log(result.runId);
    }
    return result;
  }
}
