import { BaseCommand } from '../../cli/base-command.js';
import { table } from '../../cli/table.js';
import { listVariables, type VariableItem } from '../../services/variables.js';

export default class VariablesList extends BaseCommand<typeof VariablesList> {
  static override stackRelay = true;
  static override summary = 'List variables (secret values are masked).';

  async run(): Promise<VariableItem[]> {
    const rows = await listVariables(this.connection());
    this.log(
      table(
        ['KEY', 'VALUE', 'DESCRIPTION'],
        rows.map((v) => [v.key, v.value.split('\n')[0], v.description]),
      ),
    );
    return rows;
  }
}
