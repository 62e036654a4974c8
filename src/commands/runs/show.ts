import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { lateEndNote } from '../../cli/late-end.js';
import { table } from '../../cli/table.js';
import { showRun, type RunDetail } from '../../services/runs.js';

export default class RunsShow extends BaseCommand<typeof RunsShow> {
  static override stackRelay = true;
  static override summary = 'Show a run: its state, conf, and every task with its tries.';
  static override args = { runId: Args.string({ required: true, description: 'run id' }) };

  async run(): Promise<RunDetail> {
    const r = await showRun({ ...this.connection(), runId: this.args.runId });
    this.log(`${r.runId}  dag=${r.dagId}  state=${r.state}  conf=${JSON.stringify(r.conf)}`);
    if (r.error) this.log(`error: ${r.error}`);
    this.log(
      table(
        ['TASK', 'STATE', 'TRY', 'WORKER', 'ENDED', 'ERROR'],
        r.tasks.map((t) => [t.taskId, t.state, t.tryNumber, t.workerId, t.endedAt, t.error?.split('\n')[0]]),
      ),
    );
    // A try whose process ran on after it was declared lost, maybe beside the task's next try.
    for (const t of r.tasks) {
      const current = { tryNumber: t.tryNumber, startedAt: t.startedAt };
      for (const x of t.tries) {
        const note = lateEndNote(x, [...t.tries, current]);
        if (note) this.log(`${t.taskId} try ${x.tryNumber} on worker ${x.workerId}: ${note}`);
      }
    }
    return r;
  }
}
