/**
 * The worker_block fault: the main thread of a worker, where its own code and a node task's code run,
 * blocked by synchronous work for longer than the zombie threshold while one of its bash tasks runs. Such a
 * worker once stopped heartbeating, was declared lost, and the bash task's next try started on another
 * worker while the first still ran (issue 16). The fault starts a run of a one-task DAG (a bash task that
 * outlasts the block), waits for a worker to run it, and blocks that worker's main thread through its
 * inspector (opened with SIGUSR1: the suite's workers run with --inspect-port=0).
 */
import type pg from 'pg';
import type { Daemon } from '../helpers/cli.js';
import { uniqueName } from '../helpers/env.js';
import { ledgerCommand } from '../helpers/faults.js';
import { evaluate, openInspector } from '../helpers/inspector.js';

export const HOLD_DAG = 'chaos_hold';

/** The DAG: one bash task, ledger lines around `seconds` of sleep. */
export function holdDagFile(ledger: string, seconds: number): string {
  const cmd = ledgerCommand(ledger, `sleep ${seconds}`);
  return `import { dag } from 'airtasks';
export const hold = dag('${HOLD_DAG}', { defaults: { retries: 1, retryDelay: '1s' } });
hold.bash('hold', { command: ${JSON.stringify(cmd)} });
`;
}

export interface BlockOptions {
  db: pg.Client;
  schema: string;
  /** Starts a run of the hold DAG with this id. */
  startRun(runId: string): Promise<void>;
  workers: Array<Daemon | null>;
  blockMs: number;
}

/** Starts a hold run and blocks the main thread of the worker that runs it; returns the run's id. */
export async function blockHoldingWorker(o: BlockOptions): Promise<string> {
  const runId = `chaos_hold_${uniqueName('r')}`;
  await o.startRun(runId);
  const end = Date.now() + 30_000;
  let pid: number | undefined;
  while (pid === undefined) {
    const r = await o.db.query<{ pid: number }>(
      `SELECT w.pid FROM "${o.schema}".task_instances t JOIN "${o.schema}".workers w USING (worker_id)
       WHERE t.run_id = $1 AND t.task_id = 'hold' AND t.state = 'running'`,
      [runId],
    );
    pid = r.rows[0]?.pid;
    if (pid !== undefined) break;
    if (Date.now() > end) throw new Error(`no worker ran ${runId} within 30 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const worker = o.workers.find((w) => w?.pid === pid);
  if (!worker) throw new Error(`the worker running ${runId} (pid ${pid}) is not one of the suite's`);
  const url = await openInspector(pid, () => worker.output);
  await evaluate(url, `(() => { const end = Date.now() + ${o.blockMs}; while (Date.now() < end); })()`);
  return runId;
}
