import { Args } from '@oclif/core';
import { BaseCommand, EXIT_CODES_HELP } from '../cli/base-command.js';
import { explainWait, waitLines, type WhyResult } from '../services/why.js';

export default class Why extends BaseCommand<typeof Why> {
  static override stackRelay = true;
  static override summary = 'Say what holds each unfinished task of a run (or the one named), one line each.';
  static override description = `Judged as the scheduler and the workers judge it: upstream tasks not done (named) and the trigger rule, a retry waiting until a time, the DAG paused or at its maxActiveRuns (a queued run), the DAG at its maxActiveTasks or a full pool (naming the tries that hold the slots), a message in the outbox or waiting in the broker, no live worker consuming the queue, every worker of the queue busy, a claimed task waiting for GPUs (and which tasks hold them), or running (where, since when). --json gives each reason as data: {runId, dagId, runState, tasks: [{taskId, state, reason: {kind, ...}, text}]}. A broker that cannot be reached is the reason given for queued tasks, not an error.

${EXIT_CODES_HELP}`;
  static override examples = [
    `<%= config.bin %> why manual__2024-05-01T10:00:00.000Z_ab12`,
    `<%= config.bin %> why manual__2024-05-01T10:00:00.000Z_ab12 train --json`,
  ];
  static override args = {
    runId: Args.string({ required: true, description: 'run id' }),
    taskId: Args.string({ required: false, description: 'only this task (also when it has finished)' }),
  };

  async run(): Promise<WhyResult> {
    const r = await explainWait({ ...this.connection(), runId: this.args.runId, taskId: this.args.taskId });
    if (r.tasks.length === 0) this.log(`run ${r.runId} (${r.dagId}) is ${r.runState}: no task waits`);
    // The items of a mapped task that wait alike are one line (--json lists each).
    const lines = waitLines(r.tasks);
    const width = Math.max(0, ...lines.map((l) => l.taskId.length));
    for (const l of lines) {
      const alike = (l.items ?? 1) > 1 ? `${l.items} items alike, e.g.: ` : '';
      this.log(`${l.taskId.padEnd(width)}  ${l.state.padEnd(12)}  ${alike}${l.text}`);
    }
    return r;
  }
}
