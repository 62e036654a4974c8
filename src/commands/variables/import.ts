import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { importVariables } from '../../services/variables.js';

export default class VariablesImport extends BaseCommand<typeof VariablesImport> {
  static override stackRelay = true;
  static override summary = 'Import variables from a JSON object file (all or nothing).';
  static override args = { file: Args.string({ required: true }) };

  async run() {
    const r = await importVariables({ ...this.connection(), file: this.args.file });
    this.log(`imported ${r.imported} variable(s)`);
    return r;
  }
}
