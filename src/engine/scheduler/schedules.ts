/**
 * Schedule math: which scheduled runs are due, as pure functions of a DAG's schedule, the logical date
 * of its last scheduled run and the current time.
 *
 * Semantics are Airflow's data intervals (its default cron timetable): consecutive cron times t0 < t1 < ...
 * (the first at or after startDate) cut time into intervals [t(i), t(i+1)). The run for an interval has
 * logical date t(i) and is created once the interval is over, at t(i+1). So a `@daily` DAG's run for
 * Monday (logical date Monday 00:00) is created on Tuesday 00:00, and `{{ ds }}` is Monday.
 */
import { parseCron } from '../dag/schedule.js';
import type { SerializedSchedule } from '../../core/dag-model.js';

/** At most this many runs per DAG per pass; the rest of a long catchup follows in the next passes. */
export const MAX_RUNS_PER_PASS = 50;

export interface SchedulePlan {
  /** Logical dates of the runs to create now, oldest first. */
  logicalDates: Date[];
  /** Logical date of the next run after these; null when the schedule has ended (endDate). */
  nextLogicalDate: Date | null;
  /** When that next run is due (the end of its interval); null when the schedule has ended. */
  nextRunAt: Date | null;
}

/** The first cron time strictly after t. */
export function cronTimeAfter(s: SerializedSchedule, t: Date, seed?: string): Date {
  return parseCron(s.cron, s.timezone, t, seed).next().toDate();
}

/**
 * The last two cron times at or before t (older first), or null if the schedule has none. Found by
 * stepping back a few times and then walking forward with next(), so that the result is on the same
 * chain of times as forward iteration (around DST changes cron-parser's prev() and next() can disagree
 * on an ambiguous wall time).
 */
function lastTwoCronTimes(s: SerializedSchedule, t: Date, seed?: string): [Date, Date] | null {
  const back = parseCron(s.cron, s.timezone, new Date(t.getTime() + 1), seed);
  let anchor: Date | null = null;
  try {
    for (let i = 0; i < 4; i++) anchor = back.prev().toDate();
  } catch {
    return null; // fewer than four cron times before t: only possible for sparse schedules at the epoch
  }
  const times: Date[] = [];
  let x = new Date(anchor!.getTime() - 1);
  for (;;) {
    const n = cronTimeAfter(s, x, seed);
    if (n > t) break;
    times.push(n);
    x = n;
  }
  return times.length >= 2 ? [times.at(-2)!, times.at(-1)!] : null;
}

/** The first cron time at or after t. */
function cronTimeAtOrAfter(s: SerializedSchedule, t: Date, seed?: string): Date {
  return cronTimeAfter(s, new Date(t.getTime() - 1), seed);
}

/**
 * The scheduled runs due at `now`. Without catchup only the most recent complete interval is created
 * (intervals missed before it are skipped for good); with catchup every interval since the last
 * scheduled run (or startDate) is, at most `limit` per call.
 */
export function planScheduledRuns(
  s: SerializedSchedule,
  lastLogicalDate: Date | null,
  now: Date,
  o: { limit?: number; seed?: string } = {},
): SchedulePlan {
  const limit = o.limit ?? MAX_RUNS_PER_PASS;
  const startDate = new Date(s.startDate);
  const endDate = s.endDate ? new Date(s.endDate) : null;
  const first = cronTimeAtOrAfter(s, startDate, o.seed);
  let next = lastLogicalDate ? cronTimeAfter(s, lastLogicalDate, o.seed) : first;
  if (next < first) next = first;
  if (!s.catchup) {
    // The most recent complete interval is [latestStart, latestEnd) with latestEnd <= now.
    const latest = lastTwoCronTimes(s, now, o.seed);
    if (latest && latest[0] > next) next = latest[0];
  }
  const logicalDates: Date[] = [];
  for (;;) {
    if (endDate && next > endDate) return { logicalDates, nextLogicalDate: null, nextRunAt: null };
    const end = cronTimeAfter(s, next, o.seed);
    if (end > now || logicalDates.length >= limit) {
      return { logicalDates, nextLogicalDate: next, nextRunAt: end };
    }
    logicalDates.push(next);
    next = end;
  }
}

/**
 * The id of a DAG's scheduled run for a logical date. Deterministic, so schedulers racing to create the
 * same run insert the same primary key and only one succeeds. Run ids are unique across DAGs here, so
 * the DAG id is part of it.
 */
export function scheduledRunId(dagId: string, logicalDate: Date): string {
  return `scheduled__${dagId}__${logicalDate.toISOString()}`;
}
