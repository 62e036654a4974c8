/**
 * Inspecting runs, task instances and logs. Workers store what tasks print, return and fail with masked
 * already; what is shown here is masked again with the secrets this process can read, for what was stored
 * before (by an older worker) or before a value became secret.
 */
import { NotFoundError } from '../core/errors.js';
import type { RunState, TaskState } from '../core/states.js';
import { parseItemId } from '../engine/dag/mapped.js';
import { readLogs } from '../engine/store/logs.js';
import * as runs from '../engine/store/runs.js';
import * as tis from '../engine/store/task-instances.js';
import { secretVariablesMasker } from '../engine/variables.js';
import type { ConnectionOptions } from './config.js';
import { withEngine } from './engine.js';

export interface RunListItem {
  runId: string;
  dagId: string;
  state: RunState;
  runType: string;
  /** For scheduled runs the start of the interval the run covers; for manual runs when it was triggered. */
  logicalDate: string;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export async function listRuns(
  o: ConnectionOptions & { dagId?: string; state?: string; limit?: number },
): Promise<RunListItem[]> {
  return withEngine(o, async (e) => {
    return (await runs.listRuns(e.db, o)).map((r) => ({
      runId: r.run_id,
      dagId: r.dag_id,
      state: r.state,
      runType: r.run_type,
      logicalDate: r.logical_date.toISOString(),
      createdAt: r.created_at.toISOString(),
      startedAt: iso(r.started_at),
      endedAt: iso(r.ended_at),
    }));
  });
}

export interface RunDetail extends RunListItem {
  conf: Record<string, unknown>;
  /** Why the run ended early (cancelled, timed out); null otherwise. */
  error: string | null;
  dagHash: string;
  /** The tasks; the items of a mapped task are in its `map`, not here. */
  tasks: TaskView[];
}

/**
 * A mapped task's items as a group: how many, how many in each state, and (asked for with `items`) each
 * item in item order. The task's `state` is then the group's: running while an item is unfinished, failed
 * if one failed, else success.
 */
export interface MapGroup {
  items: number;
  counts: Partial<Record<TaskState, number>>;
  list?: TaskView[];
}

export interface TaskView {
  taskId: string;
  state: TaskState;
  tryNumber: number;
  queue: string;
  workerId: string | null;
  startedAt: string | null;
  endedAt: string | null;
  exitCode: number | null;
  output: unknown;
  error: string | null;
  tries: TryView[];
  requeues: number;
  /** Set on a mapped task whose items are made. */
  map?: MapGroup;
}

/** A try: who ran it and when; for an ended one, how it ended. */
export interface TryView {
  tryNumber: number;
  state: string;
  workerId: string | null;
  startedAt: string | null;
  endedAt: string | null;
  error: string | null;
  /**
   * When the try's process really ended, when that was after endedAt (its worker was declared lost, its
   * run cancelled): it ran unseen until then, possibly beside the next try.
   */
  processEndedAt: string | null;
}

const tryView = (t: tis.TryRow): TryView => ({
  tryNumber: t.try_number,
  state: t.state,
  workerId: t.worker_id,
  startedAt: iso(t.started_at),
  endedAt: iso(t.ended_at),
  error: t.error,
  processEndedAt: iso(t.process_ended_at),
});

/** Moves the items of mapped tasks (`<task>[<index>]`) into their task's group (see MapGroup). */
export function groupItems(views: TaskView[], withItems: boolean): TaskView[] {
  const groups = new Map<string, Array<{ index: number; v: TaskView }>>();
  const tasks: TaskView[] = [];
  for (const v of views) {
    const item = parseItemId(v.taskId);
    if (!item) {
      tasks.push(v);
      continue;
    }
    let g = groups.get(item.taskId);
    if (!g) groups.set(item.taskId, (g = []));
    g.push({ index: item.index, v });
  }
  for (const t of tasks) {
    const g = groups.get(t.taskId);
    if (!g) continue;
    g.sort((a, b) => a.index - b.index);
    const counts: Partial<Record<TaskState, number>> = {};
    for (const { v } of g) counts[v.state] = (counts[v.state] ?? 0) + 1;
    t.map = { items: g.length, counts, ...(withItems ? { list: g.map((x) => x.v) } : {}) };
    if (t.state !== 'success') continue;
    const n = (s: TaskState[]) => s.reduce((a, x) => a + (counts[x] ?? 0), 0);
    if (n(['none', 'queued', 'running', 'up_for_retry']) > 0) t.state = 'running';
    else if (n(['failed', 'upstream_failed', 'cancelled']) > 0) t.state = 'failed';
  }
  return tasks;
}

export async function showRun(o: ConnectionOptions & { runId: string; items?: boolean }): Promise<RunDetail> {
  return withEngine(o, async (e) => {
    const r = await runs.getRun(e.db, o.runId);
    if (!r) throw new NotFoundError('run', o.runId, `unknown run "${o.runId}"`);
    const tries = await tis.listTries(e.db, o.runId);
    const list = await tis.listTaskInstances(e.db, o.runId);
    // By task: a mapped task's 10,000 items would make a scan per task quadratic.
    const triesOf = new Map<string, tis.TryRow[]>();
    for (const x of tries) {
      const l = triesOf.get(x.task_id);
      if (l) l.push(x);
      else triesOf.set(x.task_id, [x]);
    }
    const m = await secretVariablesMasker(e.db);
    const text = (s: string | null) => (s === null ? null : m.mask(s));
    return {
      runId: r.run_id,
      dagId: r.dag_id,
      state: r.state,
      runType: r.run_type,
      createdAt: r.created_at.toISOString(),
      startedAt: iso(r.started_at),
      endedAt: iso(r.ended_at),
      conf: m.maskDeep(r.conf) as Record<string, unknown>,
      error: text(r.error),
      dagHash: r.dag_hash,
      logicalDate: r.logical_date.toISOString(),
      tasks: groupItems(
        list.map((t) => ({
          taskId: t.task_id,
          state: t.state,
          tryNumber: t.try_number,
          queue: t.queue,
          workerId: t.worker_id,
          startedAt: iso(t.started_at),
          endedAt: iso(t.ended_at),
          exitCode: t.exit_code,
          output: m.maskDeep(t.output),
          error: text(t.error),
          // Times the current try's message was re-sent because it was lost (see the scheduler).
          requeues: t.requeues,
          tries: (triesOf.get(t.task_id) ?? []).map((x) => ({ ...tryView(x), error: text(x.error) })),
        })),
        o.items ?? false,
      ),
    };
  });
}

export interface TaskLogs {
  runId: string;
  taskId: string;
  /** Every try that started (of the one asked for with tryNumber), in order: who ran it and when. */
  tries: TryView[];
  lines: Array<{ tryNumber: number; stream: string; ts: string; line: string }>;
}

export async function taskLogs(
  o: ConnectionOptions & { runId: string; taskId: string; tryNumber?: number },
): Promise<TaskLogs> {
  return withEngine(o, async (e) => {
    const ti = await tis.getTaskInstance(e.db, o.runId, o.taskId);
    if (!ti) throw new NotFoundError('task', o.taskId, `run "${o.runId}" has no task "${o.taskId}"`);
    const rows = await readLogs(e.db, o.runId, o.taskId, { tryNumber: o.tryNumber });
    // Ended tries are in task_tries; the current one, while it runs, only in its task instance.
    const tries = (await tis.listTries(e.db, o.runId, o.taskId)).map(tryView);
    if (ti.state === 'running' && !tries.some((t) => t.tryNumber === ti.try_number))
      tries.push({
        tryNumber: ti.try_number,
        state: ti.state,
        workerId: ti.worker_id,
        startedAt: iso(ti.started_at),
        endedAt: null,
        error: null,
        processEndedAt: null,
      });
    const m = await secretVariablesMasker(e.db);
    return {
      runId: o.runId,
      taskId: o.taskId,
      tries: tries
        .filter((t) => o.tryNumber === undefined || t.tryNumber === o.tryNumber)
        .map((t) => ({ ...t, error: t.error === null ? null : m.mask(t.error) })),
      lines: rows.map((l) => ({
        tryNumber: l.try_number,
        stream: l.stream,
        ts: l.ts.toISOString(),
        line: m.mask(l.line),
      })),
    };
  });
}
