import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { dockerHostFlag } from '../cli/flags.js';
import { usageError } from '../core/errors.js';
import { deployProject, type DeployResult } from '../services/deploy.js';
import { deployLocal } from '../services/deploy-local.js';

export default class Deploy extends BaseCommand<typeof Deploy> {
  static override summary =
    "Deploy the project's deploy/stack.yml on this machine (Docker Compose) or to a Docker Swarm (--swarm).";
  static override description = `Checks that every secret the stack names exists (and names the missing ones), then deploys.
Without --swarm: the stack runs on this engine with \`docker compose\` (or \`docker-compose\`), from a compose version of the stack file written under .airtasks/compose/ (swarm-only keys turned into their compose equivalents); secrets are the project's local ones (\`airtasks secrets create --local NAME\`).
With --swarm: \`docker stack deploy\` with swarm secrets (\`airtasks secrets create NAME\`). On one machine, make it a one-node swarm first: \`docker swarm init --advertise-addr 127.0.0.1\`.
--dev bind-mounts ./dags and ./plugins into the scheduler and workers (a generated override; the stack file is not edited). -f adds compose files merged over the stack file.`;
  static override examples = [
    '<%= config.bin %> deploy',
    '<%= config.bin %> deploy --dev',
    '<%= config.bin %> deploy --swarm',
    '<%= config.bin %> deploy --swarm --stack staging -f deploy/staging.yml',
    '<%= config.bin %> deploy --swarm --dev',
  ];
  static override flags = {
    swarm: Flags.boolean({
      summary: 'Deploy as a swarm stack (default, or --no-swarm: Docker Compose on this engine).',
      default: false,
      allowNo: true,
    }),
    stack: Flags.string({ summary: "Stack name (default: airtasks.json's stackName)." }),
    dev: Flags.boolean({ summary: 'Mount ./dags and ./plugins into the airtasks services.' }),
    file: Flags.string({
      char: 'f',
      summary: 'A compose file merged over deploy/stack.yml (repeatable).',
      multiple: true,
    }),
    'resolve-image': Flags.string({
      summary: 'Swarm: query the registry for image digests (default: never for an image without registry).',
      options: ['always', 'changed', 'never'],
    }),
    'docker-host': dockerHostFlag('Docker engine address (with --swarm: a swarm manager).'),
  };

  async run(): Promise<DeployResult> {
    const f = this.flags;
    if (!f.swarm && f['resolve-image']) throw usageError('--resolve-image is for swarm deploys (--swarm)');
    const r = await (f.swarm ? deployProject : deployLocal)({
      ...(f.stack ? { stack: f.stack } : {}),
      dev: f.dev,
      files: f.file ?? [],
      ...(f['resolve-image'] ? { resolveImage: f['resolve-image'] as 'always' | 'changed' | 'never' } : {}),
      dockerHost: f['docker-host'],
      onProgress: (l) => this.progress(l),
    });
    this.log(`deployed stack ${r.stack} (${r.target}): ${r.services.join(', ')}`);
    return r;
  }
}
