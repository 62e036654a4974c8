import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { getVariable, type VariableItem } from '../../services/variables.js';

export default class VariablesGet extends BaseCommand<typeof VariablesGet> {
  static override stackRelay = true;
  static override summary = "Print a variable's value (a secret one's only with --reveal).";
  static override description = `A secret variable's value is printed only with --reveal, which needs the secret key (AIRTASKS_SECRET_KEY or AIRTASKS_SECRET_KEY_FILE). Without it the command fails (exit 2) and prints nothing, so that a script never goes on with a value it did not get.`;
  static override examples = [
    '<%= config.bin %> variables get api_url',
    '<%= config.bin %> variables get db_password --reveal',
  ];
  static override args = { key: Args.string({ required: true }) };
  static override flags = {
    reveal: Flags.boolean({ summary: "Print a secret variable's value (needs the secret key)." }),
  };

  async run(): Promise<VariableItem> {
    const v = await getVariable({ ...this.connection(), key: this.args.key, reveal: this.flags.reveal });
    this.log(v.value);
    return v;
  }
}
