import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { deleteVariable } from '../../services/variables.js';

export default class VariablesDelete extends BaseCommand<typeof VariablesDelete> {
  static override stackRelay = true;
  static override summary = 'Delete a variable.';
  static override args = { key: Args.string({ required: true }) };

  async run() {
    await deleteVariable({ ...this.connection(), key: this.args.key });
    this.log(`deleted ${this.args.key}`);
    return { key: this.args.key };
  }
}
