import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { undeployProject } from '../services/deploy.js';

export default class Undeploy extends BaseCommand<typeof Undeploy> {
  static override summary = 'Remove the deployed stack (its volumes and secrets stay).';
  static override flags = {
    stack: Flags.string({ summary: "Stack name (default: airtasks.json's stackName)." }),
    'docker-host': Flags.string({ env: 'DOCKER_HOST', summary: 'Docker engine address (a swarm manager).' }),
  };

  async run() {
    const r = await undeployProject({
      ...(this.flags.stack ? { stack: this.flags.stack } : {}),
      ...(this.flags['docker-host'] ? { dockerHost: this.flags['docker-host'] } : {}),
      onProgress: (l) => this.progress(l),
    });
    this.log(`removed stack ${r.stack}: ${r.removed.join(', ')}`);
    return r;
  }
}
