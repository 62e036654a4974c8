import { Args, Flags } from '@oclif/core';
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js';
import { clearTask, type ClearResult } from '../../services/run-control.js';

export default class TasksClear extends BaseCommand<typeof TasksClear> {
  static override stackRelay = true;
  static override summary = 'Run a task of a run again (with --downstream, every task after it too).';
  static override description = `The tasks go back to state 'none' and the scheduler runs them again: their earlier tries stay in the run's history (\`runs show\`, \`tasks logs\`) and try numbers go on from there; each gets its retries afresh. A run that had ended (success, failed, cancelled) is running again.

An item of a mapped task (\`<task>[<index>]\`, quoted for the shell) is cleared alone; with --downstream, the tasks after its mapped task are cleared too (the fan-in runs again). Clearing the mapped task itself removes its items: its list is read again and they run anew.

A task that is queued or running cannot be cleared (exit 6): wait for it, or cancel the run first.

${EXIT_CODES_HELP}`;
  static override examples = [
    `<%= config.bin %> tasks clear manual__2024-05-01T10:00:00.000Z_ab12 transform --downstream`,
  ];
  static override args = {
    runId: Args.string({ required: true, description: 'run id' }),
    taskId: Args.string({ required: true, description: "task id, or an item of a mapped task: 'task[3]'" }),
  };
  static override flags = {
    downstream: Flags.boolean({ summary: 'Also clear every task downstream of it, transitively.' }),
  };

  async run(): Promise<ClearResult> {
    const r = await clearTask({
      ...this.connection(),
      runId: this.args.runId,
      taskId: this.args.taskId,
      downstream: this.flags.downstream,
    });
    this.log(`cleared ${r.tasks.map((t) => t.taskId).join(', ')}`);
    if (r.previousRunState !== r.runState)
      this.progress(`  run ${r.runId}: ${r.previousRunState} -> ${r.runState}`);
    return r;
  }
}
