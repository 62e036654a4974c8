/**
 * The chaos suite's verdict, from the store and the ledger: each successful try finished exactly once,
 * nothing lost, run twice, left stuck or failed for another reason than a lost worker, and no two tries of
 * a task ran at the same time by the tasks' own clocks.
 */
import type pg from 'pg';
import type { LedgerEntry } from '../helpers/faults.js';

export interface StoreRows {
  runs: Array<{ run_id: string; dag_id: string; state: string }>;
  tis: Array<{
    run_id: string;
    dag_id: string;
    task_id: string;
    state: string;
    try_number: number;
    lost_tries: number;
    requeues: number;
  }>;
  tries: Array<{ run_id: string; task_id: string; try_number: number; state: string; error: string | null }>;
}

/** What the verdict reads from the store (the suite's schema). */
export async function storeRows(db: pg.Client, schema: string): Promise<StoreRows> {
  const q = async <R extends pg.QueryResultRow>(sql: string) => (await db.query<R>(sql)).rows;
  return {
    runs: await q(`SELECT run_id, dag_id, state FROM "${schema}".dag_runs`),
    tis: await q(
      `SELECT t.run_id, r.dag_id, t.task_id, t.state, t.try_number, t.lost_tries, t.requeues
       FROM "${schema}".task_instances t JOIN "${schema}".dag_runs r USING (run_id)`,
    ),
    tries: await q(`SELECT run_id, task_id, try_number, state, error FROM "${schema}".task_tries`),
  };
}

export interface Verdict {
  executionsStarted: number;
  executionsFinished: number;
  /** Executions killed mid-way (a start line without an end line). */
  executionsKilled: number;
  /** Finished executions of tries the store did not record as success (work redone after a fault). */
  reExecutions: number;
  /** Tries lost with a worker or connection (run again without counting against retries). */
  lostTries: number;
  /** Messages re-sent because they were lost. */
  requeues: number;
  /** Successful tries without a finished execution in the ledger: must be 0. */
  lost: number;
  /** Tries with more than one start or end line: must be 0. */
  duplicated: number;
  /** Pairs of tries of one task whose executions overlapped in time: must be 0. */
  overlaps: number;
  /** The longest of those overlaps, in seconds. */
  longestOverlapS: number;
  /** Tries that failed for another reason than a lost worker/connection: must be 0. */
  taskFailures: number;
  /** Task instances left queued or running: must be 0. */
  stuck: number;
  problems: string[];
}

export function verdict(rows: StoreRows, entries: LedgerEntry[]): Verdict {
  const problems: string[] = [];
  const count = new Map<string, { S: number; E: number }>();
  for (const e of entries) {
    if (e.kind === 'K') continue;
    const k = `${e.runId} ${e.taskId} ${e.tryNumber}`;
    const c = count.get(k) ?? { S: 0, E: 0 };
    c[e.kind]++;
    count.set(k, c);
  }
  const successTries = new Set(
    rows.tis.filter((t) => t.state === 'success').map((t) => `${t.run_id} ${t.task_id} ${t.try_number}`),
  );
  let lost = 0;
  for (const k of successTries) {
    if ((count.get(k)?.E ?? 0) === 0) {
      lost++;
      problems.push(`lost: ${k} is a success in the store but never finished in the ledger`);
    }
  }
  let duplicated = 0;
  let reExecutions = 0;
  for (const [k, c] of count) {
    if (c.S > 1 || c.E > 1) {
      duplicated++;
      problems.push(`duplicated: ${k} started ${c.S}x, finished ${c.E}x`);
    }
    if (c.E > 0 && !successTries.has(k)) reExecutions += c.E;
  }
  const overlaps = overlapping(entries);
  for (const o of overlaps.slice(0, 10)) problems.push(`overlap: ${o.what}`);
  const taskFailures = rows.tries.filter((t) => t.state !== 'success' && !/lost/.test(t.error ?? ''));
  for (const t of taskFailures.slice(0, 10))
    problems.push(`task failure: ${t.run_id} ${t.task_id} try ${t.try_number}: ${t.error}`);
  const stuck = rows.tis.filter((t) => t.state === 'queued' || t.state === 'running' || t.state === 'none');
  for (const t of stuck.slice(0, 10)) problems.push(`stuck: ${t.run_id} ${t.task_id} ${t.state}`);
  const failedRuns = rows.runs.filter((r) => r.state !== 'success');
  for (const r of failedRuns.slice(0, 10)) problems.push(`run ${r.run_id} ended ${r.state}`);
  return {
    executionsStarted: entries.filter((e) => e.kind === 'S').length,
    executionsFinished: entries.filter((e) => e.kind === 'E').length,
    executionsKilled: [...count.values()].reduce((n, c) => n + Math.max(0, c.S - c.E), 0),
    reExecutions,
    lostTries: rows.tis.reduce((n, t) => n + t.lost_tries, 0),
    requeues: rows.tis.reduce((n, t) => n + t.requeues, 0),
    lost,
    duplicated,
    overlaps: overlaps.length,
    longestOverlapS: Math.max(0, ...overlaps.map((o) => o.seconds)),
    taskFailures: taskFailures.length,
    stuck: stuck.length,
    problems,
  };
}

/**
 * Tries of one task whose executions overlapped, by the tasks' own clocks: a try ran from its start line
 * to its end or stopped line (a SIGKILLed one, with neither, counts from its start line only, so what is
 * found is a true overlap, never an artefact of a missing line).
 */
function overlapping(entries: LedgerEntry[]): Array<{ what: string; seconds: number }> {
  const spans = new Map<string, Map<number, { from: number; to: number; worker: string }>>();
  for (const e of entries) {
    if (e.atUs === null) continue;
    const task = `${e.runId} ${e.taskId}`;
    const byTry = spans.get(task) ?? new Map<number, { from: number; to: number; worker: string }>();
    spans.set(task, byTry);
    const s = byTry.get(e.tryNumber) ?? { from: Infinity, to: -Infinity, worker: e.workerId };
    if (e.kind === 'S') s.from = Math.min(s.from, e.atUs);
    s.to = Math.max(s.to, e.atUs);
    byTry.set(e.tryNumber, s);
  }
  const out: Array<{ what: string; seconds: number }> = [];
  for (const [task, byTry] of spans) {
    const tries = [...byTry.entries()].filter(([, s]) => Number.isFinite(s.from));
    for (const [a, sa] of tries) {
      for (const [b, sb] of tries) {
        if (a >= b) continue;
        const us = Math.min(sa.to, sb.to) - Math.max(sa.from, sb.from);
        if (us <= 0) continue;
        out.push({
          what:
            `${task}: try ${a} (worker ${sa.worker}) and try ${b} (worker ${sb.worker}) ran at the same ` +
            `time for ${(us / 1e6).toFixed(2)} s`,
          seconds: us / 1e6,
        });
      }
    }
  }
  return out.sort((x, y) => y.seconds - x.seconds);
}
