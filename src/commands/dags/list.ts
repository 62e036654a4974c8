import { BaseCommand } from '../../cli/base-command.js';
import { table } from '../../cli/table.js';
import { listDags, type DagListing } from '../../services/dags.js';

export default class DagsList extends BaseCommand<typeof DagsList> {
  static override stackRelay = true;
  static override summary = 'List the DAGs the scheduler knows, and files that failed to import.';

  async run(): Promise<DagListing> {
    const r = await listDags(this.connection());
    this.log(
      table(
        ['DAG', 'TASKS', 'PAUSED', 'SCHEDULE', 'NEXT RUN', 'FILE', 'UPDATED'],
        r.dags.map((d) => [
          d.dagId,
          d.tasks,
          d.paused ? 'yes' : 'no',
          d.schedule ? `${d.schedule}${d.timezone && d.timezone !== 'UTC' ? ` (${d.timezone})` : ''}` : '-',
          d.nextRunAt ?? '-',
          d.fileloc,
          d.updatedAt,
        ]),
      ),
    );
    if (r.importErrors.length > 0) {
      this.log(`\nImport errors (${r.importErrors.length}):`);
      for (const e of r.importErrors) this.log(`  ${e.fileloc}: ${e.message.split('\n')[0]}`);
    }
    return r;
  }
}
