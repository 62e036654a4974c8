/** What the chaos suite reports (see harness.ts), and how it prints it. */
import type { Verdict } from './verdict.js';

export type FaultKind =
  'worker_kill' | 'scheduler_kill' | 'db_terminate' | 'broker_close' | 'queue_purge' | 'worker_block';

/** Runs and tasks count the interleaved DAG's runs; the verdict covers the worker_block fault's runs too. */
export interface ChaosReport extends Verdict {
  seed: number;
  broker: string;
  runs: number;
  runsSucceeded: number;
  tasks: number;
  faults: Record<FaultKind, number>;
  seconds: number;
}

export function formatReport(r: ChaosReport): string {
  const f = Object.entries(r.faults)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ');
  return [
    `seed ${r.seed} (${r.broker}): ${r.runsSucceeded}/${r.runs} runs succeeded, ${r.tasks} tasks, ${r.seconds}s`,
    `faults: ${f}`,
    `executions: ${r.executionsStarted} started, ${r.executionsFinished} finished, ${r.executionsKilled} killed mid-way, ${r.reExecutions} redone after a fault`,
    `lost tries re-run: ${r.lostTries}; lost messages re-sent: ${r.requeues}`,
    `lost: ${r.lost}; duplicated: ${r.duplicated}; overlapping tries: ${r.overlaps} (longest ${r.longestOverlapS.toFixed(2)} s); task failures: ${r.taskFailures}; stuck: ${r.stuck}`,
    ...r.problems.slice(0, 20).map((p) => `problem: ${p}`),
  ].join('\n');
}
