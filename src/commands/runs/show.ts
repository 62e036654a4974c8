import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { lateEndNote } from '../../cli/late-end.js';
import { table } from '../../cli/table.js';
import { showRun, type RunDetail, type TaskView } from '../../services/runs.js';

export default class RunsShow extends BaseCommand<typeof RunsShow> {
  static override stackRelay = true;
  static override summary = 'Show a run: its state, conf, and every task with its tries.';
  static override description =
    'The items of a mapped task (<task>[<index>]) are shown as one row with their counts by state; --items lists each of them.';
  static override args = { runId: Args.string({ required: true, description: 'run id' }) };
  static override flags = {
    items: Flags.boolean({ summary: 'List every item of mapped tasks, under its task.' }),
  };

  async run(): Promise<RunDetail> {
    const r = await showRun({ ...this.connection(), runId: this.args.runId, items: this.flags.items });
    this.log(`${r.runId}  dag=${r.dagId}  state=${r.state}  conf=${JSON.stringify(r.conf)}`);
    if (r.error) this.log(`error: ${r.error}`);
    const rows: TaskView[] = r.tasks.flatMap((t) => [t, ...(t.map?.list ?? [])]);
    const mapped = r.tasks.some((t) => t.map);
    const itemsOf = (t: TaskView) =>
      t.map
        ? `${t.map.items}: ${Object.entries(t.map.counts)
            .map(([s, n]) => `${n} ${s}`)
            .join(', ')}`
        : null;
    this.log(
      table(
        ['TASK', 'STATE', 'TRY', 'WORKER', 'ENDED', ...(mapped ? ['ITEMS'] : []), 'ERROR'],
        rows.map((t) => [
          t.taskId,
          t.state,
          t.tryNumber,
          t.workerId,
          t.endedAt,
          ...(mapped ? [itemsOf(t)] : []),
          t.error?.split('\n')[0],
        ]),
      ),
    );
    // A try whose process ran on after it was declared lost, maybe beside the task's next try.
    for (const t of rows) {
      const current = { tryNumber: t.tryNumber, startedAt: t.startedAt };
      for (const x of t.tries) {
        const note = lateEndNote(x, [...t.tries, current]);
        if (note) this.log(`${t.taskId} try ${x.tryNumber} on worker ${x.workerId}: ${note}`);
      }
    }
    return r;
  }
}
