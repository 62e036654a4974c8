import { Args } from '@oclif/core';
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js';
import { setDagPaused, type DagScheduleState } from '../../services/dags.js';

export default class DagsUnpause extends BaseCommand<typeof DagsUnpause> {
  static override stackRelay = true;
  static override summary = 'Unpause a DAG: its queued runs start and its schedule resumes.';
  static override description = `Without catchup, only the most recent missed interval gets a run; with catchup, every missed interval does.

${EXIT_CODES_HELP}`;
  static override examples = ['<%= config.bin %> dags unpause example_scheduled'];
  static override args = { dagId: Args.string({ required: true, description: 'DAG id' }) };

  async run(): Promise<DagScheduleState> {
    const d = await setDagPaused({ ...this.connection(), dagId: this.args.dagId, paused: false });
    this.log(`${d.dagId} unpaused`);
    return d;
  }
}
