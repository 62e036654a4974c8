import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js';
import { ExitCode } from '../../core/errors.js';
import { validateDags, type ValidationReport } from '../../services/dags.js';

export default class DagsValidate extends BaseCommand<typeof DagsValidate> {
  static override summary =
    'Import every DAG file of the dags folder and report errors (no database needed).';
  static override description = `A check for CI: exits 5 if any file fails to import or defines an invalid DAG (cycle, duplicate or unknown task ids).

${EXIT_CODES_HELP}`;

  async run(): Promise<ValidationReport> {
    const r = await validateDags({ dagsFolder: this.flags['dags-folder'] });
    for (const d of r.dags) this.log(`ok     ${d.dagId} (${d.tasks} tasks) in ${d.fileloc}`);
    for (const e of r.errors) this.log(`error  ${e.fileloc}: ${e.message}`);
    this.log(`${r.files} file(s), ${r.dags.length} DAG(s), ${r.errors.length} error(s) in ${r.dagsFolder}`);
    if (r.errors.length > 0) this.setExitCode(ExitCode.INVALID_DAGS);
    return r;
  }
}
