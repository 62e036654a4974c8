import { BaseCommand } from '../../cli/base-command.js';
import { dockerHostFlag, localSecretsFlag } from '../../cli/flags.js';
import { table } from '../../cli/table.js';
import { listLocalSecrets } from '../../services/local-secrets.js';
import { listProjectSecrets } from '../../services/secrets.js';

export default class SecretsLs extends BaseCommand<typeof SecretsLs> {
  static override summary =
    'List swarm secrets, or with --local the local ones (names and dates, never values).';
  static override flags = {
    local: localSecretsFlag,
    'docker-host': dockerHostFlag(),
  };

  async run() {
    if (this.flags.local) {
      const local = await listLocalSecrets({});
      this.log(
        table(
          ['NAME', 'CREATED'],
          local.map((s) => [s.name, s.createdAt]),
        ),
      );
      return { secrets: local.map((s) => ({ name: s.name, createdAt: s.createdAt })) };
    }
    const secrets = await listProjectSecrets({ dockerHost: this.flags['docker-host'] });
    this.log(
      table(
        ['NAME', 'CREATED', 'ID'],
        secrets.map((s) => [s.name, s.createdAt, s.id.slice(0, 12)]),
      ),
    );
    return { secrets: secrets.map((s) => ({ name: s.name, id: s.id, createdAt: s.createdAt })) };
  }
}
