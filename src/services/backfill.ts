/**
 * Backfills: the scheduled runs of a past range of a DAG's schedule, created on request with the
 * scheduler's run ids (so a run is never made twice), started by the schedulers under the backfill's own
 * max active runs, and optionally waited for.
 */
import { AirtasksError, ConflictError, ExitCode, ValidationError } from '../core/errors.js';
import { TERMINAL_RUN_STATES, type RunState } from '../core/states.js';
import { applyParams } from '../engine/dag/params.js';
import { toInstant } from '../engine/dag/schedule.js';
import { backfillLogicalDates } from '../engine/scheduler/backfill-dates.js';
import { scheduledRunId } from '../engine/scheduler/schedules.js';
import * as bf from '../engine/store/backfills.js';
import * as dags from '../engine/store/dags.js';
import type { Db } from '../engine/store/db.js';
import * as runs from '../engine/store/runs.js';
import type { ConnectionOptions } from './config.js';
import { unknownDag } from './dags.js';
import { withEngine } from './engine.js';
import { watchRuns } from './run-end-watch.js';

export type Reprocess = bf.Reprocess;
export const REPROCESS: readonly Reprocess[] = ['none', 'failed', 'all'];
/** A backfill's bound on its active runs when neither the call nor the DAG sets one (Airflow's default). */
export const DEFAULT_BACKFILL_MAX_ACTIVE_RUNS = 16;
/** The most runs one backfill may hold unless the call raises it: a typo in a date should not make 10^5. */
export const DEFAULT_MAX_BACKFILL_RUNS = 1000;

export interface BackfillOptions extends ConnectionOptions {
  dagId: string;
  /** First and last logical date of the range (inclusive): a date or date-time in the DAG's time zone, or ISO. */
  from: string;
  to: string;
  /** What to do with runs of the range that exist: none (leave them), failed (re-run failed or cancelled ones), all. */
  reprocess?: Reprocess;
  /** How many of the backfill's runs may run at once (default: the DAG's maxActiveRuns, else 16). */
  maxActiveRuns?: number;
  /** Refuse a range of more runs than this (default 1000). */
  maxRuns?: number;
  /** List what would be done; write nothing. */
  dryRun?: boolean;
  wait?: boolean;
  timeoutMs?: number;
  /** The time intervals must have ended by (default: now). */
  now?: Date;
  onRunEnd?: (r: BackfillRun) => void;
  onNotice?: (message: string) => void;
}

export type BackfillAction = 'create' | 'reprocess' | 'skip';

export interface BackfillRun {
  runId: string;
  logicalDate: string;
  /** The run's state before the backfill; null when it did not exist. */
  existingState: RunState | null;
  action: BackfillAction;
  /** Its state now (after --wait: how it ended); null in a dry run for a run that does not exist. */
  state: RunState | null;
}

export interface BackfillResult {
  /** Null in a dry run. */
  backfillId: number | null;
  dagId: string;
  from: string;
  to: string;
  reprocess: Reprocess;
  maxActiveRuns: number;
  dryRun: boolean;
  counts: {
    /** Runs of the range (intervals that have ended). */
    total: number;
    existing: number;
    existingByState: Partial<Record<RunState, number>>;
    create: number;
    reprocess: number;
    skip: number;
    /** Intervals of the range that have not ended yet: left to the scheduler. */
    notEnded: number;
  };
  runs: BackfillRun[];
  /** With wait: how the backfill's runs ended (failed if one failed, else cancelled if one was, else success). */
  outcome?: 'success' | 'failed' | 'cancelled';
}

/** The error for a wait that ran out of time (exit 12), with the result so far. */
export class BackfillWaitTimeout extends AirtasksError {
  constructor(
    readonly result: BackfillResult,
    seconds: number,
  ) {
    const left = result.runs.filter((r) => r.action !== 'skip' && !isEnded(r.state)).length;
    super(
      `backfill ${result.backfillId} did not finish within ${seconds}s (${left} run(s) still queued or running)`,
      ExitCode.WAIT_TIMEOUT,
    );
  }
}

const isEnded = (s: RunState | null) => s !== null && TERMINAL_RUN_STATES.includes(s);

function positiveInt(field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1)
    throw new ValidationError(field, 'out-of-range', (n) => `${n} must be a whole number of 1 or more`, {
      value: v,
    });
  return v;
}

function instant(field: string, text: string, timezone: string): Date {
  try {
    return toInstant(text, timezone, '\u0000');
  } catch (err) {
    const m = (err as Error).message;
    throw new ValidationError(field, 'malformed', (n) => m.replace('\u0000', n), { value: text });
  }
}

/** What each run of the range gets, given the state of the one that exists. */
function actionFor(existing: RunState | undefined, reprocess: Reprocess): BackfillAction {
  if (existing === undefined) return 'create';
  if (reprocess === 'failed' && (existing === 'failed' || existing === 'cancelled')) return 'reprocess';
  if (reprocess === 'all' && isEnded(existing)) return 'reprocess';
  return 'skip';
}

export async function backfill(o: BackfillOptions): Promise<BackfillResult> {
  const reprocess = o.reprocess ?? 'none';
  if (!REPROCESS.includes(reprocess))
    throw new ValidationError('reprocess', 'malformed', (n) => `${n} must be one of ${REPROCESS.join(', ')}`);
  const maxRuns = positiveInt('maxRuns', o.maxRuns, DEFAULT_MAX_BACKFILL_RUNS);
  positiveInt('maxActiveRuns', o.maxActiveRuns, 1);
  return withEngine(o, async (e) => {
    const dag = await dags.getDag(e.db, o.dagId);
    if (!dag || !dag.is_active) throw await unknownDag(e.db, o.dagId);
    const version = await dags.getVersion(e.db, dag.hash);
    const schedule = version?.schedule;
    if (!version || !schedule)
      throw new ValidationError(
        'dagId',
        'wrong-type',
        `DAG "${dag.dag_id}" has no schedule, so it has no scheduled runs to backfill: ` +
          `give it one (schedule, startDate) or start a run with \`airtasks trigger dag ${dag.dag_id}\``,
        { value: dag.dag_id },
      );
    const from = instant('from', o.from, schedule.timezone);
    const to = instant('to', o.to, schedule.timezone);
    if (from > to)
      throw new ValidationError(
        'from',
        'out-of-range',
        (n) => `${n} (${from.toISOString()}) is after the end of the range (${to.toISOString()})`,
      );
    const dates = backfillLogicalDates(schedule, from, to, o.now ?? new Date(), {
      max: maxRuns,
      seed: dag.dag_id,
    });
    if (dates.overLimit)
      throw new ValidationError(
        'maxRuns',
        'too-large',
        (n) =>
          `the range holds more than ${maxRuns} runs of DAG "${dag.dag_id}" (schedule ${schedule.cron}): ` +
          `narrow the range, or raise ${n}`,
      );
    const ids = dates.logicalDates.map((d) => scheduledRunId(dag.dag_id, d));
    const existing = await bf.existingRuns(e.db, ids);
    const plan: BackfillRun[] = dates.logicalDates.map((d, i) => {
      const state = existing.get(ids[i]!)?.state;
      return {
        runId: ids[i]!,
        logicalDate: d.toISOString(),
        existingState: state ?? null,
        action: actionFor(state, reprocess),
        state: state ?? null,
      };
    });
    const result: BackfillResult = {
      backfillId: null,
      dagId: dag.dag_id,
      from: from.toISOString(),
      to: to.toISOString(),
      reprocess,
      maxActiveRuns: o.maxActiveRuns ?? dag.max_active_runs ?? DEFAULT_BACKFILL_MAX_ACTIVE_RUNS,
      dryRun: !!o.dryRun,
      counts: counted(plan, dates.notEnded),
      runs: plan,
    };
    if (plan.length === 0 && dates.notEnded === 0)
      o.onNotice?.(
        `no run of DAG "${dag.dag_id}" falls in the range: its schedule (${schedule.cron}) starts ${schedule.startDate}` +
          (schedule.endDate ? ` and ends ${schedule.endDate}` : ''),
      );
    if (dates.notEnded > 0)
      o.onNotice?.(
        `${dates.notEnded} interval(s) of the range have not ended yet: the scheduler creates their runs when they do`,
      );
    if (o.dryRun) return result;

    await bf.settleBackfills(e.db, dag.dag_id);
    const conf = applyParams(version.params, {}, dag.dag_id); // as the scheduler's runs get
    await e.db.tx(async (c) => {
      const row = await bf.insertBackfill(c, {
        dagId: dag.dag_id,
        from,
        to,
        reprocess,
        maxActiveRuns: result.maxActiveRuns,
      });
      if (!row) {
        const other = await bf.runningBackfill(c, dag.dag_id);
        throw new ConflictError(
          'backfill',
          String(other?.backfill_id ?? ''),
          `DAG "${dag.dag_id}" has a backfill running (${other?.backfill_id ?? '?'}): wait for it to end, ` +
            `or stop it with \`airtasks backfill cancel ${other?.backfill_id ?? '<id>'}\``,
        );
      }
      result.backfillId = row.backfill_id;
      const toCreate = plan.filter((r) => r.action === 'create');
      const { created } = await runs.createRuns(
        c,
        toCreate.map((r) => ({
          runId: r.runId,
          dagId: dag.dag_id,
          dagHash: dag.hash,
          conf,
          runType: 'scheduled',
          logicalDate: new Date(r.logicalDate),
        })),
        e.db.channel('events'),
      );
      await bf.adoptCreatedRuns(c, row.backfill_id, created);
      const requeued = await bf.requeueEndedRuns(
        c,
        row.backfill_id,
        plan.filter((r) => r.action === 'reprocess').map((r) => ({ runId: r.runId, from: r.existingState! })),
        { keepSucceeded: reprocess === 'failed', eventsChannel: e.db.channel('events') },
      );
      // A run the scheduler made, or one that changed, in the meantime is the scheduler's: skipped here.
      const ours = new Set([...created, ...requeued]);
      const now = await bf.existingRuns(c, ids);
      for (const r of plan) {
        if (r.action !== 'skip' && !ours.has(r.runId)) r.action = 'skip';
        r.state = now.get(r.runId)?.state ?? null;
      }
      result.counts = counted(plan, dates.notEnded);
      // Marks it done at once when it has nothing to run.
      await bf.settleBackfills(c, dag.dag_id);
    });
    if (dag.is_paused)
      o.onNotice?.(
        `DAG "${dag.dag_id}" is paused: the backfill's runs stay queued until \`airtasks dags unpause ${dag.dag_id}\``,
      );
    const left = plan.filter((r) => r.action === 'skip' && (r.state === 'failed' || r.state === 'cancelled'));
    if (left.length > 0 && reprocess !== 'all')
      o.onNotice?.(
        `${left.length} run(s) of the range stay failed or cancelled: --reprocess failed runs them again`,
      );
    if (!o.wait) return result;
    return await waitForBackfill(e.db, result, o);
  });
}

function counted(plan: BackfillRun[], notEnded: number): BackfillResult['counts'] {
  const existingByState: Partial<Record<RunState, number>> = {};
  for (const r of plan)
    if (r.existingState) existingByState[r.existingState] = (existingByState[r.existingState] ?? 0) + 1;
  const n = (a: BackfillAction) => plan.filter((r) => r.action === a).length;
  return {
    total: plan.length,
    existing: plan.filter((r) => r.existingState !== null).length,
    existingByState,
    create: n('create'),
    reprocess: n('reprocess'),
    skip: n('skip'),
    notEnded,
  };
}

/**
 * Waits until every run the backfill created or re-ran has ended, telling each end as it comes; the
 * outcome is failed if one failed, else cancelled if one was, else success.
 */
async function waitForBackfill(
  db: Db,
  result: BackfillResult,
  o: Pick<BackfillOptions, 'timeoutMs' | 'onRunEnd'>,
): Promise<BackfillResult> {
  const mine = new Map(result.runs.filter((r) => r.action !== 'skip').map((r) => [r.runId, r]));
  const deadline = o.timeoutMs ? Date.now() + o.timeoutMs : Infinity;
  const watch = await watchRuns(db, (id) => mine.has(id));
  try {
    for (;;) {
      const states = await runs.runStates(db, [...mine.keys()]);
      for (const [id, r] of mine) {
        const s = states.get(id) ?? null;
        if (s !== r.state && isEnded(s)) o.onRunEnd?.({ ...r, state: s });
        r.state = s;
      }
      const all = [...mine.values()];
      if (all.every((r) => isEnded(r.state))) {
        const has = (s: RunState) => all.some((r) => r.state === s);
        result.outcome = has('failed') ? 'failed' : has('cancelled') ? 'cancelled' : 'success';
        await bf.settleBackfills(db, result.dagId).catch(() => undefined);
        return result;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new BackfillWaitTimeout(result, Math.round((o.timeoutMs ?? 0) / 1000));
      await watch.nap(Math.min(left, 1000));
    }
  } finally {
    await watch.close();
  }
}
