import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { table } from '../../cli/table.js';
import { listRuns, type RunListItem } from '../../services/runs.js';

export default class RunsList extends BaseCommand<typeof RunsList> {
  static override stackRelay = true;
  static override summary = 'List recent runs.';
  static override flags = {
    dag: Flags.string({ summary: 'Only runs of this DAG.' }),
    state: Flags.string({
      summary: 'Only runs in this state.',
      options: ['queued', 'running', 'success', 'failed', 'cancelled'],
    }),
    limit: Flags.integer({ summary: 'At most this many runs.', default: 50, min: 1 }),
  };

  async run(): Promise<RunListItem[]> {
    const rows = await listRuns({
      ...this.connection(),
      dagId: this.flags.dag,
      state: this.flags.state,
      limit: this.flags.limit,
    });
    this.log(
      table(
        ['RUN', 'DAG', 'STATE', 'TYPE', 'LOGICAL DATE', 'CREATED', 'ENDED'],
        rows.map((r) => [r.runId, r.dagId, r.state, r.runType, r.logicalDate, r.createdAt, r.endedAt]),
      ),
    );
    return rows;
  }
}
