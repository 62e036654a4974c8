/**
 * Evaluates locked runs in the pass's transaction: reads their task states, asks decide() for each run's
 * next steps, and writes them: tasks that will never run are settled, those admitted are queued (with their
 * outbox rows), finished runs are ended and their run callbacks queued.
 */
import type { SerializedDag } from '../../core/dag-model.js';
import type { PendingEvents } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import { BRANCH_OPERATOR } from '../dag/branch.js';
import type { VersionCache } from '../dag/versions.js';
import type { Queryable } from '../store/db.js';
import type { OutboxRow } from '../store/outbox.js';
import { type QueueRequest, queueRunCallback, queueTasks, settleUnrun } from '../store/queueing.js';
import { finishRuns } from '../store/run-passes.js';
import type { RunRow } from '../store/runs.js';
import { briefsForRuns } from '../store/task-instances.js';
import type { Admission } from './admission.js';
import { decide, type TaskStateBrief } from './decide.js';

export interface RunEvaluatorDeps {
  versions: VersionCache;
  admission: Admission;
  /** The events channel finished runs are announced on. */
  eventsChannel: string;
  log: Logger;
  /** Told how many task rows were read (the pass loop paces passes that read many). */
  rowsRead: (n: number) => void;
  /** Told that a run ended: its slot is free, so a queued run may start. */
  runEnded: () => void;
}

export class RunEvaluator {
  constructor(private readonly d: RunEvaluatorDeps) {}

  /**
   * Decides and applies the next steps of the given (locked) runs; returns the outbox rows written. Runs
   * it ends are told to `pending`, for the caller to emit after the commit.
   */
  async evaluate(c: Queryable, locked: RunRow[], pending?: PendingEvents): Promise<OutboxRow[]> {
    if (locked.length === 0) return [];
    const dags = new Map<string, SerializedDag>();
    for (const r of locked) dags.set(r.dag_hash, await this.d.versions.get(r.dag_hash));
    // decide() reads the choices of branch tasks from their outputs.
    const branchIds = [...dags.values()].flatMap((d) =>
      d.tasks.filter((t) => t.operator === BRANCH_OPERATOR).map((t) => t.taskId),
    );
    const briefs = await briefsForRuns(
      c,
      locked.map((r) => r.run_id),
      [...new Set(branchIds)],
    );
    this.d.rowsRead(briefs.length);
    const byRun = new Map<string, Map<string, TaskStateBrief>>();
    for (const b of briefs) {
      let m = byRun.get(b.run_id);
      if (!m) byRun.set(b.run_id, (m = new Map()));
      m.set(b.task_id, { state: b.state, nextRetryAt: b.next_retry_at, output: b.output });
    }
    const now = new Date();
    const toQueue: QueueRequest[] = [];
    const toSettle: Array<{ runId: string; taskId: string; state: 'skipped' | 'upstream_failed' }> = [];
    const finished: Array<{ run: RunRow; state: 'success' | 'failed'; dag: SerializedDag }> = [];
    for (const r of locked) {
      const d = decide(dags.get(r.dag_hash)!, byRun.get(r.run_id) ?? new Map(), now);
      for (const q of d.queue) toQueue.push({ runId: r.run_id, ...q });
      for (const s of d.settle) toSettle.push({ runId: r.run_id, ...s });
      if (d.runState) finished.push({ run: r, state: d.runState, dag: dags.get(r.dag_hash)! });
    }
    await settleUnrun(c, toSettle);
    const outbox = await queueTasks(c, await this.d.admission.admit(c, locked, dags, toQueue));
    const ended = await finishRuns(
      c,
      finished.map((f) => ({ runId: f.run.run_id, state: f.state })),
      this.d.eventsChannel,
    );
    for (const f of finished) {
      if (ended.has(f.run.run_id)) {
        this.d.log.info({ dagId: f.run.dag_id, runId: f.run.run_id, state: f.state }, 'run finished');
        this.d.runEnded();
        const { dag_id: dagId, run_id: runId } = f.run;
        pending?.add('run.ended', () => ({ dagId, runId, state: f.state, at: new Date() }));
        // The scheduler never runs user code: a run callback is queued for a worker, in this transaction.
        const event = f.state === 'success' ? 'onRunSuccess' : 'onRunFailure';
        const rc = f.dag.runCallbacks;
        if (rc?.[event]) outbox.push(...(await queueRunCallback(c, f.run.run_id, `@${event}`, rc.queue)));
      }
    }
    return outbox;
  }
}
