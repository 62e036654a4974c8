import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { taskLogs, type TaskLogs } from '../../services/runs.js';

export default class TasksLogs extends BaseCommand<typeof TasksLogs> {
  static override summary = "Print a task's log (every try, or one with --try).";
  static override args = {
    runId: Args.string({ required: true, description: 'run id' }),
    taskId: Args.string({ required: true, description: 'task id' }),
  };
  static override flags = { try: Flags.integer({ summary: 'Only this try.', min: 1 }) };

  async run(): Promise<TaskLogs> {
    const r = await taskLogs({
      ...this.connection(),
      runId: this.args.runId,
      taskId: this.args.taskId,
      tryNumber: this.flags.try,
    });
    let lastTry = 0;
    for (const l of r.lines) {
      if (l.tryNumber !== lastTry) this.log(`--- try ${(lastTry = l.tryNumber)} ---`);
      this.log(l.stream === 'stdout' ? l.line : `[${l.stream}] ${l.line}`);
    }
    return r;
  }
}
