import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dockerHostFlag, localSecretsFlag } from '../../cli/flags.js';
import { removeLocalSecrets } from '../../services/local-secrets.js';
import { removeProjectSecrets } from '../../services/secrets.js';

export default class SecretsRm extends BaseCommand<typeof SecretsRm> {
  static override summary =
    'Remove swarm secrets (services using one must be removed first), or with --local local ones.';
  static override strict = false;
  static override args = { name: Args.string({ required: true, description: 'secret name(s)' }) };
  static override flags = {
    local: localSecretsFlag,
    'docker-host': dockerHostFlag(),
  };

  async run() {
    const { argv } = await this.parse(SecretsRm);
    const names = argv as string[];
    const removed = this.flags.local
      ? await removeLocalSecrets({ names })
      : await removeProjectSecrets({
          names,
          dockerHost: this.flags['docker-host'],
        });
    for (const n of removed) this.log(`removed secret ${n}`);
    return { removed };
  }
}
