/**
 * Creates a run and, when a scheduler would start it at once anyway, starts it in the same statement: its
 * first tasks are queued and their messages sent without waiting for a scheduler's pass (which took a
 * wake-up and a transaction of some ten statements between a trigger and its first task). Runs the
 * schedulers must weigh (a paused DAG, run or task limits, first tasks that wait for pool slots, a first
 * step other than queueing tasks) are created queued, as before, and a scheduler starts them.
 */
import type { SerializedDag } from '../core/dag-model.js';
import type { Db } from './store/db.js';
import type { OutboxRow } from './store/outbox.js';
import { notifyRun } from './store/run-progress.js';
import { createRuns, createStartedRun, type NewRun, type StartingTask } from './store/runs.js';
import { refreshStatisticsAfterGrowth, STATISTICS_GROWTH } from './store/statistics.js';
import { decide } from './scheduler/decide.js';

export type NewRunOutcome = 'started' | 'queued' | 'taken';

/**
 * The run's task instances with those to queue first, or null when the run is for the schedulers to start:
 * a new run's first steps, as decide() takes them, when they are only to queue tasks that need no pool
 * (exactly what the scheduler's start would queue: run-starter.ts evaluates the new run with decide()).
 */
export function firstTasks(dag: SerializedDag): StartingTask[] | null {
  const d = decide(dag, new Map(), new Date());
  if (d.queue.length === 0 || d.settle.length > 0 || d.expand.length > 0 || d.runState) return null;
  const first = new Set(d.queue.map((q) => q.taskId));
  const tasks = dag.tasks.map((t) => ({
    taskId: t.taskId,
    queue: t.queue,
    priority: t.priorityWeight,
    pool: t.pool ?? null,
    poolSlots: t.poolSlots ?? 1,
    queued: first.has(t.taskId),
  }));
  return tasks.some((t) => t.queued && t.pool !== null) ? null : tasks;
}

/**
 * Creates the run, started when it can be (see the module's comment). `publish` sends the first tasks'
 * messages when this process has a broker; without one, the schedulers are told to send them.
 */
export async function createRun(
  db: Db,
  run: NewRun,
  dag: SerializedDag | undefined,
  publish: ((rows: OutboxRow[]) => Promise<void>) | null,
): Promise<NewRunOutcome> {
  const channel = db.channel('events');
  // No stored version to read its first tasks from: the schedulers find out what becomes of the run.
  const tasks = dag ? firstTasks(dag) : null;
  if (tasks) {
    // A big run refreshes the planner's statistics before any worker claims its tasks (see statistics.ts),
    // so the schedulers are told only after that; a small one is told in the statement that creates it.
    const big = tasks.length >= STATISTICS_GROWTH;
    const note = publish ? `started:${run.runId}` : `outbox:${run.runId}`;
    const rows = await createStartedRun(db, run, tasks, channel, big ? null : note);
    if (rows) {
      if (big) {
        await refreshStatisticsAfterGrowth(db, tasks.length).catch(() => false);
        await notifyRun(db, channel, note);
      }
      if (publish) await publish(rows);
      return 'started';
    }
  }
  const { created } = await createRuns(db, [run], channel);
  return created.length > 0 ? 'queued' : 'taken';
}
