import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { lateEndNote } from '../../cli/late-end.js';
import { taskLogs, type TaskLogs } from '../../services/runs.js';

export default class TasksLogs extends BaseCommand<typeof TasksLogs> {
  static override stackRelay = true;
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
    // Each try under a header naming its worker, lines or not; lines of a try with no record (written by
    // a version that stored its header as a line) still get a plain one.
    const tries = new Map(r.tries.map((t) => [t.tryNumber, t]));
    const numbers = [...new Set([...tries.keys(), ...r.lines.map((l) => l.tryNumber)])].sort((a, b) => a - b);
    for (const n of numbers) {
      const t = tries.get(n);
      const late = t ? lateEndNote(t, r.tries) : null;
      this.log(
        t?.workerId
          ? `--- try ${n} on worker ${t.workerId} (started ${t.startedAt}${late ? `; ${late}` : ''}) ---`
          : `--- try ${n} ---`,
      );
      for (const l of r.lines) {
        if (l.tryNumber === n) this.log(l.stream === 'stdout' ? l.line : `[${l.stream}] ${l.line}`);
      }
    }
    return r;
  }
}
