/** Statistics and the shape of a benchmark's figures: every figure carries a ratio to a baseline of the same run. */

/** The q-quantile (0..1) of the values, by linear interpolation between the nearest ranks; NaN when empty. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (s.length - 1) * Math.min(1, Math.max(0, q));
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function mean(values: number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** A figure compared with a target: `max` means lower is better, `min` higher is better. */
export interface Target {
  text: string;
  met: boolean;
}

export function atMost(value: number, limit: number, text: string): Target {
  return { text, met: Number.isFinite(value) && value <= limit };
}

export function atLeast(value: number, limit: number, text: string): Target {
  return { text, met: Number.isFinite(value) && value >= limit };
}

export interface Figure {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  /** What the ratio divides by, measured in the same invocation; absent for figures that are baselines. */
  baseline?: { name: string; value: number };
  target?: Target;
  note?: string;
}

/** value / baseline, or NaN when there is no usable baseline. */
export function ratioOf(f: Figure): number {
  if (!f.baseline || !Number.isFinite(f.baseline.value) || f.baseline.value === 0) return NaN;
  return f.value / f.baseline.value;
}

/** Figures a benchmark could not produce (a peer not installed, docker missing) carry a note instead. */
export function skipped(bench: string, metric: string, why: string): Figure {
  return { bench, metric, value: NaN, unit: '', note: why };
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

export function formatRatio(r: number): string {
  return Number.isFinite(r) ? `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}x` : '-';
}
