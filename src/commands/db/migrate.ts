import { BaseCommand } from '../../cli/base-command.js';
import { migrateDb } from '../../services/daemons.js';

export default class DbMigrate extends BaseCommand<typeof DbMigrate> {
  static override stackRelay = true;
  static override summary =
    'Create or upgrade the airtasks schema (safe to run concurrently and repeatedly).';

  async run() {
    const r = await migrateDb(this.connection());
    this.log(
      r.applied.length
        ? `applied ${r.applied.join(', ')}; schema ${r.schema} at version ${r.current}`
        : `schema ${r.schema} is up to date (version ${r.current})`,
    );
    return r;
  }
}
