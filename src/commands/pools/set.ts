import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { setPool, type PoolItem } from '../../services/pools.js';

export default class PoolsSet extends BaseCommand<typeof PoolsSet> {
  static override stackRelay = true;
  static override summary = 'Create a pool or change its number of slots.';
  static override description =
    'Tasks that name the pool (pool: "name", poolSlots: N) are queued only while N of its slots are free; ' +
    "slots are shared by every DAG. 0 slots holds the pool's tasks back.";
  static override args = {
    name: Args.string({ required: true }),
    slots: Args.string({ required: true, description: 'number of slots (0 or more)' }),
  };
  static override flags = {
    description: Flags.string({ summary: 'What the pool is for.' }),
  };
  static override examples = ['<%= config.bin %> pools set gpu_memory 4 --description "A100 80GB shares"'];

  async run(): Promise<PoolItem> {
    const p = await setPool({
      ...this.connection(),
      name: this.args.name,
      slots: this.args.slots,
      description: this.flags.description,
    });
    this.log(`pool ${p.name}: ${p.slots} slots (${p.running} running, ${p.queued} queued, ${p.open} open)`);
    return p;
  }
}
