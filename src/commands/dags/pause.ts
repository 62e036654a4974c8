import { Args } from '@oclif/core';
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js';
import { setDagPaused, type DagScheduleState } from '../../services/dags.js';

export default class DagsPause extends BaseCommand<typeof DagsPause> {
  static override stackRelay = true;
  static override summary = 'Pause a DAG: no scheduled runs, and its queued runs wait until it is unpaused.';
  static override description = `Runs already running go on to their end. Manual triggers of a paused DAG are accepted and stay queued.

${EXIT_CODES_HELP}`;
  static override examples = ['<%= config.bin %> dags pause example_scheduled'];
  static override args = { dagId: Args.string({ required: true, description: 'DAG id' }) };

  async run(): Promise<DagScheduleState> {
    const d = await setDagPaused({ ...this.connection(), dagId: this.args.dagId, paused: true });
    this.log(`${d.dagId} paused`);
    return d;
  }
}
