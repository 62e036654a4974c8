import { Args } from '@oclif/core';
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js';
import { cancelRun, type CancelResult } from '../../services/run-control.js';

export default class RunsCancel extends BaseCommand<typeof RunsCancel> {
  static override stackRelay = true;
  static override summary = 'Cancel a queued or running run: stop its running tasks, start no others.';
  static override description = `Tasks that have not started never start; running tasks are stopped by their workers (process tree killed, container stopped) and their late results are discarded. Every unfinished task ends 'cancelled' and the run ends 'cancelled' (\`trigger dag --wait\` exits 11).

Cancelling a run that is already cancelled changes nothing and exits 0; cancelling a run that ended otherwise (success, failed) exits 6.

${EXIT_CODES_HELP}`;
  static override examples = [`<%= config.bin %> runs cancel manual__2024-05-01T10:00:00.000Z_ab12`];
  static override args = { runId: Args.string({ required: true, description: 'run id' }) };

  async run(): Promise<CancelResult> {
    const r = await cancelRun({ ...this.connection(), runId: this.args.runId });
    if (r.alreadyCancelled) {
      this.log(`${r.runId} was already cancelled`);
      return r;
    }
    const stopping = r.tasks.filter((t) => t.from === 'running').map((t) => t.taskId);
    this.log(`${r.runId} cancelled`);
    this.progress(
      `  ${r.tasks.length} unfinished task(s) cancelled` +
        (stopping.length ? `; stopping running: ${stopping.join(', ')}` : ''),
    );
    return r;
  }
}
