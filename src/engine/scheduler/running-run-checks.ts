/**
 * Timed checks of running runs: retries that came due (no event announces them), and runs past their
 * DAG's runTimeout. Both rest while the last full sweep found no running run.
 */
import type { EngineEventStream } from '../../core/events.js';
import type { Logger } from '../../core/logger.js';
import type { Db } from '../store/db.js';
import { stopRun } from '../store/run-control.js';
import { runsWithDueRetries, timedOutRuns } from '../store/run-passes.js';
import type { RunChanges } from './run-changes.js';

export class RunningRunChecks {
  constructor(
    private readonly db: Db,
    private readonly changes: RunChanges,
    private readonly log: Logger,
    private readonly stopping: AbortSignal,
    private readonly events: EngineEventStream,
  ) {}

  /** Has the runs with a retry that came due looked at. */
  async dueRetries(): Promise<void> {
    if (this.stopping.aborted || this.changes.noRunningRuns) return;
    try {
      const due = await runsWithDueRetries(this.db);
      if (due.length === 0) return;
      this.changes.recheck(due);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'retry check failed');
    }
  }

  /** Fails runs that exceeded their DAG's runTimeout and stops their running tasks (as a cancel does). */
  async timeouts(): Promise<void> {
    if (this.stopping.aborted || this.changes.noRunningRuns) return;
    try {
      for (const t of await timedOutRuns(this.db)) {
        const reason = `run timed out after ${formatMs(t.timeoutMs)} (runTimeout)`;
        const r = await this.db.tx((c) =>
          stopRun(c, t.runId, {
            runState: 'failed',
            reason,
            eventsChannel: this.db.channel('events'),
            claimsChannel: this.db.channel('claims'),
          }),
        );
        if (r?.stopped)
          this.log.warn(
            {
              dagId: t.dagId,
              runId: t.runId,
              stoppedTasks: r.tasks.filter((x) => x.from === 'running').length,
            },
            reason,
          );
        const { dagId, runId } = t;
        if (r?.stopped)
          this.events.emit('run.ended', () => ({ dagId, runId, state: 'failed', at: new Date() }));
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'run timeout check failed');
    }
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
