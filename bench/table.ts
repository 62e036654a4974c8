/** Prints the figures as a text table, or as Markdown for the README. */
import { formatNumber, formatRatio, ratioOf, type Figure } from './stats.js';

const HEADERS = ['bench', 'metric', 'value', 'ratio', 'baseline', 'target', 'met'];

function rowOf(f: Figure): string[] {
  const value = Number.isFinite(f.value) ? `${formatNumber(f.value)} ${f.unit}`.trim() : (f.note ?? '-');
  const baseline = f.baseline ? `${f.baseline.name} (${formatNumber(f.baseline.value)})` : '';
  const met = f.target ? (f.target.met ? 'yes' : 'NO') : '';
  return [f.bench, f.metric, value, formatRatio(ratioOf(f)), baseline, f.target?.text ?? '', met];
}

export function textTable(figures: Figure[]): string {
  const rows = [HEADERS, ...figures.map(rowOf)];
  const widths = HEADERS.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === 2 || i === 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function markdownTable(figures: Figure[]): string {
  const esc = (s: string) => s.replaceAll('|', '\\|');
  return [
    `| ${HEADERS.join(' | ')} |`,
    `|${HEADERS.map((_, i) => (i === 2 || i === 3 ? '---:' : '---')).join('|')}|`,
    ...figures.map((f) => `| ${rowOf(f).map(esc).join(' | ')} |`),
  ].join('\n');
}

/** The figures as JSON: each with its ratio, so a reader needs no arithmetic. */
export function jsonFigures(figures: Figure[]) {
  return figures.map((f) => ({ ...f, ratio: Number.isFinite(ratioOf(f)) ? ratioOf(f) : null }));
}
