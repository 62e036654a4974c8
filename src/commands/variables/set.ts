import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { MIN_MASKED_LENGTH } from '../../core/masking.js';
import { setVariable } from '../../services/variables.js';

export default class VariablesSet extends BaseCommand<typeof VariablesSet> {
  static override stackRelay = true;
  static override summary = 'Set a variable (value from the argument, or stdin with -).';
  static override args = {
    key: Args.string({ required: true }),
    value: Args.string({ required: true, description: "the value, or '-' to read it from stdin" }),
  };
  static override flags = {
    secret: Flags.boolean({
      summary: `Encrypt the value; mask it in listings, task logs, outputs and errors (${MIN_MASKED_LENGTH}+ characters).`,
    }),
    description: Flags.string({ summary: 'What the variable is for.' }),
  };

  async run() {
    const value = this.args.value === '-' ? await readStdin() : this.args.value;
    const r = await setVariable({
      ...this.connection(),
      key: this.args.key,
      value,
      secret: this.flags.secret,
      description: this.flags.description,
    });
    if (r.unmaskable) this.warn(unmaskedWarning([this.args.key]));
    this.log(`set ${this.args.key}`);
    return { key: this.args.key, secret: this.flags.secret, unmaskable: r.unmaskable };
  }
}

/** The warning for secrets too short to be masked (`set --secret`, `import`). */
export function unmaskedWarning(keys: string[]): string {
  const names = keys.map((k) => `"${k}"`).join(', ');
  const [is, it] = keys.length > 1 ? ['are', 'they'] : ['is', 'it'];
  return (
    `secret ${names} ${is} shorter than ${MIN_MASKED_LENGTH} characters: ${it} cannot be masked, ` +
    `and task logs, outputs and errors would show ${it === 'it' ? 'it' : 'them'} as ${it} ${is}`
  );
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\n$/, '');
}
