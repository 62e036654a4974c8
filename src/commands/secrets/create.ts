import { readFile } from 'node:fs/promises';
import { Args, Flags } from '@oclif/core';
import { password } from '@inquirer/prompts';
import { BaseCommand } from '../../cli/base-command.js';
import { dockerHostFlag, localSecretsFlag } from '../../cli/flags.js';
import { usageError } from '../../core/errors.js';
import { createLocalSecret } from '../../services/local-secrets.js';
import { createProjectSecret } from '../../services/secrets.js';

export default class SecretsCreate extends BaseCommand<typeof SecretsCreate> {
  static override summary =
    'Create a swarm secret (or, with --local, a local one) from a file, stdin, or a hidden prompt.';
  static override description = `The value is sent to the Docker engine only (with --local: written to the project's .airtasks/secrets/NAME, mode 0600, which a local deploy mounts at /run/secrets/NAME): never printed or logged. Without --file it is read from stdin (bytes as given: \`printf\` adds no newline, \`echo\` does); on a terminal it is asked for with hidden input. An empty value is stored as a blank line (Docker refuses empty secrets); blank means off for the proxy's secrets.`;
  static override examples = [
    "printf 's3cret' | <%= config.bin %> secrets create postgres_password",
    "printf 's3cret' | <%= config.bin %> secrets create --local postgres_password",
    '<%= config.bin %> secrets create ssl_certificate --file cert.pem',
  ];
  static override args = { name: Args.string({ required: true, description: 'secret name' }) };
  static override flags = {
    file: Flags.string({ char: 'f', summary: 'Read the value from this file.' }),
    local: localSecretsFlag,
    'docker-host': dockerHostFlag(),
  };

  async run() {
    const value = await this.readValue();
    if (this.flags.local) {
      const r = await createLocalSecret({ name: this.args.name, value });
      this.log(`created local secret ${r.name} (${r.blank ? 'blank' : `${r.bytes} bytes`})`);
      return r;
    }
    const r = await createProjectSecret({
      name: this.args.name,
      value,
      dockerHost: this.flags['docker-host'],
    });
    this.log(`created secret ${r.name} (${r.blank ? 'blank' : `${r.bytes} bytes`})`);
    return r;
  }

  private async readValue(): Promise<Buffer> {
    if (this.flags.file) {
      try {
        return await readFile(this.flags.file);
      } catch (err) {
        throw usageError(`cannot read ${this.flags.file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    }
    if (process.stdin.isTTY) {
      const v = await password(
        { message: `Value of ${this.args.name}`, mask: true },
        { output: process.stderr },
      );
      return Buffer.from(v, 'utf8');
    }
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
}
