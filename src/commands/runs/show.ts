import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
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
    return r;
  }
}
