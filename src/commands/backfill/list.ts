import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { table } from '../../cli/table.js';
import { listBackfills, type BackfillInfo } from '../../services/backfill-control.js';

export default class BackfillList extends BaseCommand<typeof BackfillList> {
  static override stackRelay = true;
  static override summary = 'List recent backfills, newest first, with their runs by state.';
  static override flags = {
    dag: Flags.string({ summary: 'Only backfills of this DAG.' }),
    limit: Flags.integer({ summary: 'At most this many backfills.', default: 50, min: 1 }),
  };

  async run(): Promise<BackfillInfo[]> {
    const rows = await listBackfills({
      ...this.connection(),
      dagId: this.flags.dag,
      limit: this.flags.limit,
    });
    this.log(
      table(
        ['ID', 'DAG', 'STATE', 'FROM', 'TO', 'REPROCESS', 'MAX ACTIVE', 'RUNS'],
        rows.map((b) => [
          b.backfillId,
          b.dagId,
          b.state,
          b.from,
          b.to,
          b.reprocess,
          b.maxActiveRuns,
          Object.entries(b.runs)
            .map(([s, n]) => `${n} ${s}`)
            .join(', ') || '-',
        ]),
      ),
    );
    return rows;
  }
}
