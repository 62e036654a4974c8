import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { exportVariables } from '../../services/variables.js';

export default class VariablesExport extends BaseCommand<typeof VariablesExport> {
  static override stackRelay = true;
  static override summary =
    'Print all variables as one JSON object (secret ones only with --include-secrets).';
  static override flags = {
    'include-secrets': Flags.boolean({ summary: 'Include the values of secret variables.' }),
  };

  async run() {
    const r = await exportVariables({ ...this.connection(), includeSecrets: this.flags['include-secrets'] });
    if (!this.jsonEnabled()) this.log(JSON.stringify(r, null, 2));
    return r;
  }
}
