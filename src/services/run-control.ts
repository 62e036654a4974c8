/** Cancelling runs and clearing tasks so that they run again. */
import { ConflictError, NotFoundError } from '../core/errors.js';
import { getVersion } from '../engine/store/dags.js';
import { clearTasks as clearStoredTasks, stopRun } from '../engine/store/run-control.js';
import * as runs from '../engine/store/runs.js';
import { getTaskInstance } from '../engine/store/task-instances.js';
import { parseItemId } from '../engine/dag/mapped.js';
import type { RunState, TaskState } from '../core/states.js';
import type { ConnectionOptions } from './config.js';
import { withEngine } from './engine.js';

export interface CancelResult {
  runId: string;
  dagId: string;
  state: 'cancelled';
  previousState: RunState;
  /** True when the run had already been cancelled: nothing changed. */
  alreadyCancelled: boolean;
  /** Tasks moved to 'cancelled' and the state they left; 'running' ones are being stopped by their worker. */
  tasks: Array<{ taskId: string; from: TaskState }>;
}

const unknownRun = (runId: string, hint = '') =>
  new NotFoundError('run', runId, `unknown run "${runId}"${hint}`);

export const CANCEL_REASON = 'cancelled: the run was cancelled (airtasks runs cancel)';

/**
 * Cancels a queued or running run: tasks that have not started never start, running ones are stopped by
 * their workers (told at once) and their late results are refused. Cancelling a cancelled run changes
 * nothing; a run that ended otherwise is a conflict (exit 6).
 */
export async function cancelRun(o: ConnectionOptions & { runId: string }): Promise<CancelResult> {
  return withEngine(o, async (e) => {
    const run = await runs.getRun(e.db, o.runId);
    if (!run) throw unknownRun(o.runId, ' (airtasks runs list shows the runs)');
    const r = await e.db.tx((c) =>
      stopRun(c, o.runId, {
        runState: 'cancelled',
        reason: CANCEL_REASON,
        eventsChannel: e.db.channel('events'),
        claimsChannel: e.db.channel('claims'),
      }),
    );
    if (!r) throw unknownRun(o.runId);
    if (!r.stopped && r.previousState !== 'cancelled') {
      throw new ConflictError(
        'run',
        o.runId,
        `run "${o.runId}" already ended (${r.previousState}); only a queued or running run can be cancelled. ` +
          `To run some of its tasks again: airtasks tasks clear ${o.runId} <task_id> [--downstream]`,
      );
    }
    return {
      runId: o.runId,
      dagId: run.dag_id,
      state: 'cancelled',
      previousState: r.previousState,
      alreadyCancelled: !r.stopped,
      tasks: r.tasks,
    };
  });
}

export interface ClearResult {
  runId: string;
  dagId: string;
  previousRunState: RunState;
  runState: RunState;
  /** The tasks put back to 'none', with the state they left and the last try number they had. */
  tasks: Array<{ taskId: string; from: TaskState; tryNumber: number }>;
}

/** Every task downstream of `taskId`, transitively, in the DAG. */
export function downstreamOf(tasks: ReadonlyArray<{ taskId: string; upstream: string[] }>, taskId: string) {
  const found = new Set<string>();
  const visit = (id: string) => {
    for (const t of tasks) {
      if (t.upstream.includes(id) && !found.has(t.taskId)) {
        found.add(t.taskId);
        visit(t.taskId);
      }
    }
  };
  visit(taskId);
  return [...found];
}

/**
 * Runs a task again (with `downstream`, also every task after it): their states go back to 'none' with
 * their try history kept, and a run that had ended is running again. Refused (exit 6) while one of them is
 * queued or running.
 */
export async function clearTask(
  o: ConnectionOptions & {
    runId: string;
    taskId: string;
    downstream?: boolean;
    /** More tasks to clear in the same transaction (the dashboard's "mark for retry"). */
    alsoTaskIds?: string[];
  },
): Promise<ClearResult> {
  return withEngine(o, async (e) => {
    const run = await runs.getRun(e.db, o.runId);
    if (!run) throw unknownRun(o.runId, ' (airtasks runs list shows the runs)');
    const dag = await getVersion(e.db, run.dag_hash);
    if (!dag) throw new Error(`DAG version ${run.dag_hash} of run ${o.runId} is missing from the store`);
    // An item of a mapped task (`<task>[<index>]`) is cleared alone; --downstream clears its task's downstream.
    const item = parseItemId(o.taskId);
    const base = item && dag.tasks.find((t) => t.taskId === item.taskId)?.map ? item.taskId : o.taskId;
    if (!dag.tasks.some((t) => t.taskId === base)) {
      throw new NotFoundError(
        'task',
        o.taskId,
        `run "${o.runId}" (DAG ${run.dag_id}) has no task "${o.taskId}"; its tasks: ${dag.tasks.map((t) => t.taskId).join(', ')}`,
      );
    }
    if (base !== o.taskId && !(await getTaskInstance(e.db, o.runId, o.taskId))) {
      throw new NotFoundError(
        'task',
        o.taskId,
        `run "${o.runId}" has no item "${o.taskId}" (airtasks runs show ${o.runId} --items lists them)`,
      );
    }
    const ids = [
      ...new Set([
        o.taskId,
        ...(o.downstream ? downstreamOf(dag.tasks, base) : []),
        ...(o.alsoTaskIds ?? []),
      ]),
    ];
    const r = await e.db.tx((c) => clearStoredTasks(c, o.runId, ids, e.db.channel('events')));
    switch (r.outcome) {
      case 'no_run':
        throw unknownRun(o.runId);
      case 'run_not_started':
        throw new ConflictError(
          'run',
          o.runId,
          `run "${o.runId}" has not started yet: there is nothing to clear`,
        );
      case 'busy':
        throw new ConflictError(
          'task',
          o.taskId,
          `cannot clear while ${r.tasks.map((t) => `"${t.taskId}" is ${t.state}`).join(', ')}: ` +
            `wait for ${r.tasks.length > 1 ? 'them' : 'it'} to end, or cancel the run (airtasks runs cancel ${o.runId}) and clear then`,
        );
      case 'cleared':
        return {
          runId: o.runId,
          dagId: run.dag_id,
          previousRunState: r.previousRunState,
          runState: r.runState,
          tasks: r.tasks,
        };
    }
  });
}
