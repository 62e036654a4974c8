import { Args, Flags } from '@oclif/core';
import { BaseCommand, EXIT_CODES_HELP } from '../../cli/base-command.js';
import { runExitCode } from '../../cli/run-exit-code.js';
import { table } from '../../cli/table.js';
import {
  backfill,
  BackfillWaitTimeout,
  DEFAULT_MAX_BACKFILL_RUNS,
  REPROCESS,
  type BackfillResult,
  type Reprocess,
} from '../../services/backfill.js';

export default class Backfill extends BaseCommand<typeof Backfill> {
  static override stackRelay = true;
  static override summary = 'Create the scheduled runs of a past range of a DAG: re-run history.';
  static override description = `Creates the runs the schedule has for the logical dates from --from to --to (both included; dates read in the DAG's time zone), with the scheduler's own run ids: a run that exists is never made twice, even while a scheduler creates the same one. --reprocess decides what happens to runs that exist: none leaves them, failed runs the failed or cancelled ones again (their succeeded tasks are kept), all runs every ended one again. Runs still queued or running are always left alone.

The schedulers start a backfill's runs in order, at most --max-active-runs at once (default: the DAG's maxActiveRuns, else 16). They do not count against the DAG's maxActiveRuns, so scheduled and manual runs go on beside a backfill; the DAG's maxActiveTasks and pools apply to all its runs. One backfill per DAG runs at a time.

With --wait, waits for the runs the backfill created or re-ran and exits with their outcome: 10 if one failed, else 11 if one was cancelled, else 0.

${EXIT_CODES_HELP}`;
  static override examples = [
    `<%= config.bin %> backfill daily_report --from 2024-01-01 --to 2024-01-31 --dry-run`,
    `<%= config.bin %> backfill daily_report --from 2024-01-01 --to 2024-01-31 --reprocess failed --wait`,
  ];
  static override args = { dagId: Args.string({ required: true, description: 'DAG id' }) };
  static override flags = {
    from: Flags.string({ summary: 'First logical date (e.g. 2024-01-01).', required: true }),
    to: Flags.string({ summary: 'Last logical date, included (e.g. 2024-01-31).', required: true }),
    reprocess: Flags.string({
      summary: 'Runs of the range that exist: leave them, re-run failed ones, or re-run all.',
      options: [...REPROCESS],
      default: 'none',
    }),
    'max-active-runs': Flags.integer({
      summary:
        "At most this many of the backfill's runs at once (default: the DAG's maxActiveRuns, else 16).",
      min: 1,
    }),
    'max-runs': Flags.integer({
      summary: `Refuse a range of more runs than this (default ${DEFAULT_MAX_BACKFILL_RUNS}).`,
      min: 1,
    }),
    'dry-run': Flags.boolean({ summary: 'List the runs and what would be done; change nothing.' }),
    wait: Flags.boolean({
      summary: 'Wait for the runs to end; exit code = outcome.',
      exclusive: ['dry-run'],
    }),
    timeout: Flags.integer({
      summary: 'With --wait: give up after this many seconds (exit 12).',
      min: 1,
      dependsOn: ['wait'],
    }),
  };

  async run(): Promise<BackfillResult> {
    const f = this.flags;
    let r: BackfillResult;
    try {
      r = await backfill({
        ...this.connection(),
        dagId: this.args.dagId,
        from: f.from,
        to: f.to,
        reprocess: f.reprocess as Reprocess,
        maxActiveRuns: f['max-active-runs'],
        maxRuns: f['max-runs'],
        dryRun: f['dry-run'],
        wait: f.wait,
        timeoutMs: f.timeout ? f.timeout * 1000 : undefined,
        onNotice: (m) => process.stderr.write(`Warning: ${m}\n`),
        onRunEnd: (x) => this.progress(`  ${x.logicalDate} ${x.runId}: ${x.state}`),
      });
    } catch (err) {
      if (err instanceof BackfillWaitTimeout && this.jsonEnabled()) {
        this.setExitCode(err.exitCode);
        return err.result;
      }
      throw err;
    }
    const c = r.counts;
    const existing = Object.entries(c.existingByState).map(([s, n]) => `${n} ${s}`);
    const summary =
      `${c.total} run(s) in the range, ${c.existing} exist` +
      (existing.length ? ` (${existing.join(', ')})` : '') +
      `: ${c.create} to create, ${c.reprocess} to re-run, ${c.skip} left as they are`;
    if (r.dryRun) {
      this.log(
        table(
          ['LOGICAL DATE', 'RUN', 'EXISTS', 'ACTION'],
          r.runs.map((x) => [x.logicalDate, x.runId, x.existingState ?? '-', x.action]),
        ),
      );
      this.log(`dry run: ${summary}`);
      return r;
    }
    this.log(
      `backfill ${r.backfillId} of ${r.dagId}: ${summary} (at most ${r.maxActiveRuns} running at once)`,
    );
    if (r.outcome) {
      this.setExitCode(runExitCode(r.outcome));
      this.log(`backfill ${r.backfillId} ${r.outcome}`);
    }
    return r;
  }
}
