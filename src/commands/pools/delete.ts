import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { deletePool } from '../../services/pools.js';

export default class PoolsDelete extends BaseCommand<typeof PoolsDelete> {
  static override stackRelay = true;
  static override summary = 'Delete a pool (refused, exit 6, while tasks hold its slots).';
  static override args = { name: Args.string({ required: true }) };

  async run() {
    await deletePool({ ...this.connection(), name: this.args.name });
    this.log(`deleted pool ${this.args.name}`);
    return { name: this.args.name };
  }
}
