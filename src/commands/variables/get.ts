import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { getVariable, type VariableItem } from '../../services/variables.js';

export default class VariablesGet extends BaseCommand<typeof VariablesGet> {
  static override stackRelay = true;
  static override summary = "Print a variable's value.";
  static override args = { key: Args.string({ required: true }) };

  async run(): Promise<VariableItem> {
    const v = await getVariable({ ...this.connection(), key: this.args.key });
    this.log(v.value);
    return v;
  }
}
