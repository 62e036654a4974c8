import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { exportVariables, type ExportedVariables } from '../../services/variables.js';

export default class VariablesExport extends BaseCommand<typeof VariablesExport> {
  static override stackRelay = true;
  static override summary =
    'Print all variables as one JSON object (secret ones only with --include-secrets).';
  static override description = `Plain variables are written as key -> value. With --include-secrets, each secret variable is written as {"secret": true, "encrypted": "..."}: its value encrypted with the secret key, as it is stored (it decrypts only under the same key name, with the same secret key). With --reveal as well, as {"secret": true, "value": "..."}: in clear, to move secrets to a stack with another secret key. \`variables import\` restores both forms as secret variables.`;
  static override examples = [
    '<%= config.bin %> variables export > variables.json',
    '<%= config.bin %> variables export --include-secrets > backup.json',
  ];
  static override flags = {
    'include-secrets': Flags.boolean({
      summary: 'Include secret variables, encrypted with the secret key as they are stored.',
    }),
    reveal: Flags.boolean({
      summary: 'With --include-secrets: write secret values in clear (needs the secret key).',
      dependsOn: ['include-secrets'],
    }),
  };

  async run(): Promise<ExportedVariables> {
    const r = await exportVariables({
      ...this.connection(),
      includeSecrets: this.flags['include-secrets'],
      reveal: this.flags.reveal,
    });
    if (!this.jsonEnabled()) this.log(JSON.stringify(r, null, 2));
    return r;
  }
}
