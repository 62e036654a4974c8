import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { setVariable } from '../../services/variables.js';

export default class VariablesSet extends BaseCommand<typeof VariablesSet> {
  static override stackRelay = true;
  static override summary = 'Set a variable (value from the argument, or stdin with -).';
  static override args = {
    key: Args.string({ required: true }),
    value: Args.string({ required: true, description: "the value, or '-' to read it from stdin" }),
  };
  static override flags = {
    secret: Flags.boolean({ summary: 'Mask the value in listings and task logs.' }),
    description: Flags.string({ summary: 'What the variable is for.' }),
  };

  async run() {
    const value = this.args.value === '-' ? await readStdin() : this.args.value;
    await setVariable({
      ...this.connection(),
      key: this.args.key,
      value,
      secret: this.flags.secret,
      description: this.flags.description,
    });
    this.log(`set ${this.args.key}`);
    return { key: this.args.key, secret: this.flags.secret };
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\n$/, '');
}
