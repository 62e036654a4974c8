import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { table } from '../../cli/table.js';
import { listProjectSecrets } from '../../services/secrets.js';

export default class SecretsLs extends BaseCommand<typeof SecretsLs> {
  static override summary = 'List swarm secrets (names and dates; values cannot be read back).';
  static override flags = {
    'docker-host': Flags.string({ env: 'DOCKER_HOST', summary: 'Docker engine address (a swarm manager).' }),
  };

  async run() {
    const secrets = await listProjectSecrets(
      this.flags['docker-host'] ? { dockerHost: this.flags['docker-host'] } : {},
    );
    this.log(
      table(
        ['NAME', 'CREATED', 'ID'],
        secrets.map((s) => [s.name, s.createdAt, s.id.slice(0, 12)]),
      ),
    );
    return { secrets: secrets.map((s) => ({ name: s.name, id: s.id, createdAt: s.createdAt })) };
  }
}
