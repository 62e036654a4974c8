import { BaseCommand } from '../../cli/base-command.js';
import { table } from '../../cli/table.js';
import { listPools, type PoolItem } from '../../services/pools.js';

export default class PoolsList extends BaseCommand<typeof PoolsList> {
  static override stackRelay = true;
  static override summary = 'List pools with their slots in use and the tasks waiting for them.';

  async run(): Promise<PoolItem[]> {
    const rows = await listPools(this.connection());
    this.log(
      rows.length === 0
        ? 'no pools (create one with `airtasks pools set <name> <slots>`)'
        : table(
            ['POOL', 'SLOTS', 'RUNNING', 'QUEUED', 'OPEN', 'WAITING', 'DESCRIPTION'],
            rows.map((p) => [p.name, p.slots, p.running, p.queued, p.open, p.waiting, p.description]),
          ),
    );
    return rows;
  }
}
