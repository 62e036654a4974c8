import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { dockerHostFlag } from '../cli/flags.js';
import { undeployAny } from '../services/deploy-local.js';

export default class Undeploy extends BaseCommand<typeof Undeploy> {
  static override summary = 'Remove the deployed stack (its volumes and secrets stay).';
  static override description =
    "Without --swarm or --no-swarm: this project's local (compose) deployment when there is one on the engine, else the swarm stack.";
  static override flags = {
    swarm: Flags.boolean({
      summary: 'Remove the swarm stack (--no-swarm: the local compose deployment).',
      allowNo: true,
    }),
    stack: Flags.string({ summary: "Stack name (default: airtasks.json's stackName)." }),
    'docker-host': dockerHostFlag(),
  };

  async run() {
    const r = await undeployAny({
      ...(this.flags.swarm !== undefined ? { swarm: this.flags.swarm } : {}),
      ...(this.flags.stack ? { stack: this.flags.stack } : {}),
      dockerHost: this.flags['docker-host'],
      onProgress: (l) => this.progress(l),
    });
    this.log(`removed stack ${r.stack} (${r.target}): ${r.removed.join(', ')}`);
    return r;
  }
}
