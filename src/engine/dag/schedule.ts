/**
 * Schedules as DAG authors write them, checked and normalised at parse time: cron expression, time zone,
 * start/end dates. The result (SerializedSchedule) is all the scheduler needs, so it never runs user code.
 */
import { createRequire } from 'node:module';
import type { CronExpression, CronExpressionParser } from 'cron-parser';
import type { SerializedSchedule } from '../../core/dag-model.js';

export interface ScheduleOptions {
  /** Cron expression (`0 6 * * *`; 6 fields put seconds first) or a preset: @hourly, @daily, @weekly ... */
  schedule?: string;
  /** IANA time zone the cron expression and date strings without an offset are read in (default UTC). */
  timezone?: string;
  /** Required with a schedule: the first interval starts at the first cron time at or after it. */
  startDate?: Date | string;
  /** No interval starts after it. */
  endDate?: Date | string;
  /** Create a run for every interval missed (true) or only the most recent one (false, the default). */
  catchup?: boolean;
}

const PRESETS = [
  '@yearly',
  '@annually',
  '@monthly',
  '@weekly',
  '@daily',
  '@midnight',
  '@hourly',
  '@minutely',
  '@secondly',
  '@weekdays',
  '@weekends',
];

/** Throws an Error saying what is wrong with the time zone. */
export function checkTimezone(tz: string): string {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new Error(`unknown time zone "${tz}": use an IANA name such as "UTC" or "Europe/Berlin"`);
  }
  return tz;
}

/** Loaded with the first cron expression: DAG files without a schedule, and their threads, need not hold it. */
let cronParser: typeof CronExpressionParser | null = null;

/** Parses a cron expression in a time zone, iterating from `from`; throws an Error naming the problem. */
export function parseCron(cron: string, timezone: string, from: Date, seed?: string): CronExpression {
  const text = cron.trim();
  if (text.startsWith('@')) {
    if (!PRESETS.includes(text)) {
      throw new Error(`unknown schedule preset "${text}" (one of ${PRESETS.join(', ')})`);
    }
  } else {
    const fields = text.split(/\s+/).length;
    if (fields !== 5 && fields !== 6) {
      throw new Error(
        `invalid cron expression "${cron}": expected 5 fields (minute hour day month weekday), or 6 with seconds first`,
      );
    }
  }
  const norm = text === '@annually' ? '@yearly' : text === '@midnight' ? '@daily' : text;
  cronParser ??= (createRequire(import.meta.url)('cron-parser') as typeof import('cron-parser'))
    .CronExpressionParser;
  try {
    return cronParser.parse(norm, { tz: timezone, currentDate: from, hashSeed: seed });
  } catch (err) {
    throw new Error(`invalid cron expression "${cron}": ${(err as Error).message}`);
  }
}

const WALL_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?)?$/;

/**
 * An instant from a Date or a string. An ISO string with `Z` or an offset is absolute; a date
 * (`2024-01-01`) or a date-time without offset is a wall-clock time in the DAG's time zone, as in Airflow.
 */
export function toInstant(value: Date | string, timezone: string, what: string): Date {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new Error(`${what} is an invalid Date`);
    return value;
  }
  if (typeof value !== 'string') throw new Error(`${what} must be a Date or an ISO 8601 string`);
  const m = WALL_TIME.exec(value.trim());
  if (m) {
    const [y, mo, d, h, mi, s, ms] = m.slice(1).map((x) => Number(x ?? 0)) as number[];
    const wall = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!, ms!);
    const back = new Date(wall);
    if (back.getUTCMonth() !== mo! - 1 || back.getUTCDate() !== d! || h! > 23 || mi! > 59 || s! > 59) {
      throw new Error(`${what} "${value}" is not a valid date`);
    }
    return new Date(zonedWallTimeToUtc(wall, timezone));
  }
  const t = Date.parse(value);
  if (Number.isNaN(t) || !/(Z|[+-]\d{2}:?\d{2})$/i.test(value.trim())) {
    throw new Error(
      `${what} "${value}" is not a date: use a Date, "2024-01-01", "2024-01-01T06:00" (in the DAG's time zone) or an ISO string with an offset`,
    );
  }
  return new Date(t);
}

/** The UTC instant at which the wall clock of `timezone` shows `wallMs` (read as if it were UTC). */
export function zonedWallTimeToUtc(wallMs: number, timezone: string): number {
  // Two passes settle the offset; in a DST gap the wall time is moved forward by the gap, as clocks do.
  const first = wallMs - offsetAt(timezone, wallMs);
  return wallMs - offsetAt(timezone, first);
}

/** Offset of the time zone from UTC at instant t, in ms (positive east of Greenwich). */
function offsetAt(timezone: string, t: number): number {
  const f = new Intl.DateTimeFormat('en-US', {
    timeZone: timezone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  const p = Object.fromEntries(f.formatToParts(new Date(t)).map((x) => [x.type, Number(x.value)]));
  const asUtc = Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  return asUtc - (t - (((t % 1000) + 1000) % 1000));
}

/** The serialised schedule of a DAG, or undefined when it has none. Throws an Error naming the problem. */
export function normalizeSchedule(o: ScheduleOptions): SerializedSchedule | undefined {
  const timezone = checkTimezone(o.timezone ?? 'UTC');
  if (o.schedule === undefined || o.schedule === null) {
    for (const k of ['startDate', 'endDate', 'catchup'] as const) {
      if (o[k] !== undefined) throw new Error(`${k} needs a schedule (e.g. schedule: '@daily')`);
    }
    return undefined;
  }
  if (typeof o.schedule !== 'string' || o.schedule.trim() === '') {
    throw new Error('schedule must be a cron expression such as "0 6 * * *" or a preset such as "@daily"');
  }
  if (o.startDate === undefined) {
    throw new Error(
      'a DAG with a schedule needs a startDate (e.g. startDate: "2024-01-01"): its first interval starts there',
    );
  }
  const start = toInstant(o.startDate, timezone, 'startDate');
  const end = o.endDate === undefined ? null : toInstant(o.endDate, timezone, 'endDate');
  if (end && end < start) throw new Error('endDate is before startDate');
  if (o.catchup !== undefined && typeof o.catchup !== 'boolean') throw new Error('catchup must be a boolean');
  parseCron(o.schedule, timezone, start);
  return {
    cron: o.schedule.trim(),
    timezone,
    startDate: start.toISOString(),
    endDate: end ? end.toISOString() : null,
    catchup: o.catchup ?? false,
  };
}
