/**
 * Starts queued runs: creates their task instances, marks them running and evaluates them in the same
 * transaction (which queues their first tasks), then refreshes the planner's statistics when the task
 * instances grew enough to matter.
 */
import type { SerializedTask } from '../../core/dag-model.js';
import type { EngineEventStream } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import type { VersionCache } from '../dag/versions.js';
import type { Db } from '../store/db.js';
import type { OutboxRow } from '../store/outbox.js';
import { anyQueuedRuns, lockStartableRuns, markRunning } from '../store/run-passes.js';
import { refreshStatisticsAfterGrowth } from '../store/statistics.js';
import { createTaskInstancesOfRuns } from '../store/task-instances.js';
import type { RunEvaluator } from './run-evaluator.js';

export interface RunStarterDeps {
  db: Db;
  versions: VersionCache;
  evaluator: RunEvaluator;
  publish: (rows: OutboxRow[]) => Promise<void>;
  log: Logger;
  events: EngineEventStream;
}

export class RunStarter {
  /** Task instances this scheduler created since it last refreshed the planner's statistics. */
  private createdSinceAnalyze = 0;

  constructor(private readonly d: RunStarterDeps) {}

  /** Starts up to `limit` queued runs and queues their first tasks; returns how many started. */
  async start(limit: number): Promise<number> {
    // Most passes follow a task's result, with no run waiting: one cheap read instead of a transaction.
    if (!(await anyQueuedRuns(this.d.db))) return 0;
    let started = 0;
    let created = 0;
    const pending = this.d.events.pending();
    const outbox = await this.d.db.tx(async (c) => {
      // Runs of paused DAGs, and beyond a DAG's max_active_runs, stay queued.
      const queued = await lockStartableRuns(c, limit);
      const toCreate: Array<{ runId: string; tasks: SerializedTask[] }> = [];
      for (const r of queued)
        toCreate.push({ runId: r.run_id, tasks: (await this.d.versions.get(r.dag_hash)).tasks });
      // One statement each for all the runs of the pass: starting 500 runs of 10 tasks took 1,000.
      await createTaskInstancesOfRuns(c, toCreate);
      await markRunning(
        c,
        queued.map((r) => r.run_id),
      );
      created = toCreate.reduce((n, r) => n + r.tasks.length, 0);
      for (const r of queued) {
        this.d.log.info({ dagId: r.dag_id, runId: r.run_id }, 'run started');
        pending.add('run.started', () => ({ dagId: r.dag_id, runId: r.run_id, at: new Date() }));
      }
      started = queued.length;
      return this.d.evaluator.evaluate(
        c,
        queued.map((r) => ({ ...r, state: 'running' as const })),
        pending,
      );
    });
    pending.emit();
    // Before the first messages go out, so that no worker plans its claims on outdated statistics.
    this.createdSinceAnalyze += created;
    if (await refreshStatisticsAfterGrowth(this.d.db, this.createdSinceAnalyze).catch(() => false))
      this.createdSinceAnalyze = 0;
    await this.d.publish(outbox);
    return started;
  }
}
