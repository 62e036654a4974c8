/** Durations in DAG options: milliseconds, or text such as "2s", "500ms", "5m", "1h". */
export type Duration = number | `${number}${'ms' | 's' | 'm' | 'h'}`;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses a duration given as milliseconds or as text such as "2s", "500ms", "5m". */
export function toMs(d: Duration, what = 'duration'): number {
  if (typeof d === 'number') {
    if (!Number.isFinite(d) || d < 0)
      throw new TypeError(`${what} must be a non-negative number of ms, got ${d}`);
    return d;
  }
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(d);
  if (!m) throw new TypeError(`${what} "${d}" is not a duration like "500ms", "2s", "5m" or "1h"`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}
