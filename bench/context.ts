/** What every benchmark module gets from the runner. */
import type { Floors } from './floors.js';
import type { ProcessStats } from './engine.js';
import { atMost, type Figure } from './stats.js';

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

/**
 * Peak memory of a benchmark's scheduler and worker, against a bare Node process. The worker's is its whole
 * tree: the worker, its process host (whose threads run node tasks) and any command the host started.
 * RSS counts pages shared between them (Node's code) in each; PSS counts them once.
 */
export function memoryFigures(
  ctx: BenchContext,
  where: string,
  scheduler: ProcessStats,
  worker: ProcessStats,
): Figure[] {
  const baseline = { name: 'bare node', value: ctx.floors.nodeRssMiB };
  const mib = (v: number, limit: number, metric: string): Figure => ({
    bench: 'Memory',
    metric: `${metric} (${where})`,
    value: v,
    unit: 'MiB',
    baseline,
    target: atMost(v, limit, `< ${limit} MiB`),
  });
  return [
    mib(scheduler.tree.rssMiB, 150, 'scheduler peak RSS'),
    mib(worker.tree.rssMiB, 100, `worker tree peak RSS, ${worker.tree.processes} processes`),
    mib(worker.tree.pssMiB, 100, 'worker tree peak PSS'),
    {
      bench: 'Memory',
      metric: `worker process alone peak RSS (${where})`,
      value: worker.maxRssMiB,
      unit: 'MiB',
      baseline,
    },
  ];
}
