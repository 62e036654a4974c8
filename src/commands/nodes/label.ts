import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { dockerHostFlag } from '../../cli/flags.js';
import { labelNodeForQueue } from '../../services/deploy.js';

export default class NodesLabel extends BaseCommand<typeof NodesLabel> {
  static override summary = "Let a swarm node run a queue's workers (or stop it with --remove).";
  static override description =
    'Sets the node label airtasks.queue.<queue>=true, which the worker service of that queue is constrained to.';
  static override examples = [
    '<%= config.bin %> nodes label gpu-node-1 --queue gpu',
    '<%= config.bin %> nodes label self --queue worker',
  ];
  static override args = {
    node: Args.string({ required: true, description: "node id or hostname; 'self' for this engine's node" }),
  };
  static override flags = {
    queue: Flags.string({ char: 'q', summary: 'Queue (repeatable).', multiple: true, required: true }),
    remove: Flags.boolean({ summary: 'Remove the label instead.' }),
    'docker-host': dockerHostFlag(),
  };

  async run() {
    const n = await labelNodeForQueue({
      node: this.args.node,
      queues: this.flags.queue,
      remove: this.flags.remove,
      dockerHost: this.flags['docker-host'],
    });
    const queues = Object.keys(n.labels)
      .filter((l) => l.startsWith('airtasks.queue.'))
      .map((l) => l.slice('airtasks.queue.'.length));
    this.log(`${n.hostname} (${n.id.slice(0, 12)}) runs queues: ${queues.join(', ') || 'none'}`);
    return { id: n.id, hostname: n.hostname, labels: n.labels, queues };
  }
}
