import { Args } from '@oclif/core';
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js';
import {
  cancelBackfill,
  parseBackfillId,
  type BackfillCancelResult,
} from '../../services/backfill-control.js';

export default class BackfillCancel extends BaseCommand<typeof BackfillCancel> {
  static override stackRelay = true;
  static override summary =
    'Cancel a backfill: its queued runs are cancelled and none of its runs starts any more.';
  static override description = `Runs of the backfill that are running go on (\`airtasks runs cancel <run>\` stops one). Cancelling a cancelled backfill changes nothing and exits 0; cancelling one that is done (every run ended) exits 6.

${EXIT_CODES_HELP}`;
  static override examples = [`<%= config.bin %> backfill cancel 3`];
  static override args = {
    backfillId: Args.string({ required: true, description: 'backfill id (backfill list)' }),
  };

  async run(): Promise<BackfillCancelResult> {
    const r = await cancelBackfill({
      ...this.connection(),
      backfillId: parseBackfillId(this.args.backfillId),
    });
    if (r.alreadyCancelled) this.log(`backfill ${r.backfillId} was already cancelled`);
    else {
      this.log(`backfill ${r.backfillId} cancelled`);
      this.progress(
        `  ${r.cancelledRuns.length} queued run(s) cancelled; ${r.runs.running ?? 0} running run(s) go on`,
      );
    }
    return r;
  }
}
