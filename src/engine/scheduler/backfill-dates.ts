/**
 * The logical dates of a backfill: the scheduled runs a DAG's schedule has in a range, as the scheduler
 * would create them (schedules.ts: same intervals, same seed, so the same run ids).
 */
import type { SerializedSchedule } from '../../core/dag-model.js';
import { cronTimeAfter } from './schedules.js';

export interface BackfillDates {
  /** Logical dates in [from, to] whose interval has ended by `now`, oldest first, at most `max`. */
  logicalDates: Date[];
  /** More than `max` dates are in the range (logicalDates holds the first `max`). */
  overLimit: boolean;
  /** Intervals in the range that have not ended yet: the scheduler creates their runs when they do. */
  notEnded: number;
}

/**
 * The cron times t with from <= t <= to inside the schedule's [startDate, endDate] whose interval ends by
 * `now`. Outside startDate..endDate the schedule has no runs, so a backfill has none either.
 */
export function backfillLogicalDates(
  s: SerializedSchedule,
  from: Date,
  to: Date,
  now: Date,
  o: { max: number; seed?: string },
): BackfillDates {
  const start = new Date(Math.max(from.getTime(), new Date(s.startDate).getTime()));
  const end = s.endDate ? new Date(Math.min(to.getTime(), new Date(s.endDate).getTime())) : to;
  const out: BackfillDates = { logicalDates: [], overLimit: false, notEnded: 0 };
  let t = cronTimeAfter(s, new Date(start.getTime() - 1), o.seed);
  while (t <= end) {
    const next = cronTimeAfter(s, t, o.seed);
    if (next > now) {
      // Every later interval ends later still; count them up to the bound only.
      for (let x = t; x <= end && out.notEnded <= o.max; x = cronTimeAfter(s, x, o.seed)) out.notEnded++;
      break;
    }
    if (out.logicalDates.length === o.max) {
      out.overLimit = true;
      break;
    }
    out.logicalDates.push(t);
    t = next;
  }
  return out;
}
