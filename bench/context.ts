/** What every benchmark module gets from the runner. */
import type { Floors } from './floors.js';
import type { Figure } from './stats.js';

export interface BenchContext {
  quick: boolean;
  floors: Floors;
  /** Progress lines (stderr), so that the table on stdout stays clean. */
  log(line: string): void;
}

export interface Benchmark {
  id: string;
  title: string;
  /** An upper bound on its duration; the runner stops waiting past it. */
  timeoutMs(quick: boolean): number;
  run(ctx: BenchContext): Promise<Figure[]>;
}

/**
 * A linear DAG of n no-op node tasks (t0 -> t1 -> ...). Each returns when its code started and ended, on
 * the worker's clock (ms since the epoch, sub-millisecond), as the peers' tasks record theirs: the gap
 * between two tasks is what a user's code sees, not the times the engine's statements wrote.
 */
export function chainDagSource(id: string, n: number): string {
  return `
const now = () => performance.timeOrigin + performance.now();
const run = () => { const start = now(); return { start, end: now() }; };
const d = dag(${JSON.stringify(id)});
let prev = d.node('t0', { run });
for (let i = 1; i < ${n}; i++) prev = d.node('t' + i, { upstream: prev, run });
export default d;
`;
}

/** A DAG of n independent no-op node tasks. */
export function fanOutDagSource(id: string, n: number): string {
  return `
const d = dag(${JSON.stringify(id)});
for (let i = 0; i < ${n}; i++) d.node('t' + i, { run: () => null });
export default d;
`;
}

/** Peak RSS of a benchmark's scheduler and worker, against a bare Node process. */
export function memoryFigures(
  ctx: BenchContext,
  where: string,
  schedulerMiB: number,
  workerMiB: number,
): Figure[] {
  const baseline = { name: 'bare node', value: ctx.floors.nodeRssMiB };
  return [
    { bench: 'Memory', metric: `scheduler peak RSS (${where})`, value: schedulerMiB, unit: 'MiB', baseline },
    { bench: 'Memory', metric: `worker peak RSS (${where})`, value: workerMiB, unit: 'MiB', baseline },
  ];
}
