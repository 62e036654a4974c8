import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { importVariables } from '../../services/variables.js';
import { unmaskedWarning } from './set.js';

export default class VariablesImport extends BaseCommand<typeof VariablesImport> {
  static override stackRelay = true;
  static override summary = 'Import variables from a JSON object file (all or nothing).';
  static override description = `The file is what \`variables export\` writes: key -> value for plain variables (a value that is not a string is stored as its JSON text), and {"secret": true, "encrypted": "..."} or {"secret": true, "value": "..."} for secret ones, which are imported as secret variables and need the secret key (an encrypted value must have been encrypted with it).`;
  static override args = { file: Args.string({ required: true }) };

  async run() {
    const r = await importVariables({ ...this.connection(), file: this.args.file });
    if (r.unmaskable.length > 0) this.warn(unmaskedWarning(r.unmaskable));
    this.log(`imported ${r.imported} variable(s), ${r.secrets} of them secret`);
    return r;
  }
}
