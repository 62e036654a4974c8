/**
 * Why a task waits (`airtasks why`, the dashboard): for each unfinished task of a run, the one thing that
 * holds it, judged as the engine judges it: decide() for trigger rules and retries (the scheduler's own
 * function), its admission rules (maxActiveTasks before pools), then for a queued task the outbox, the
 * broker and the workers of its queue, and for a running one its worker (and the GPUs it waits for there).
 */
import type { SerializedDag, SerializedTask } from '../core/dag-model.js';
import { NotFoundError } from '../core/errors.js';
import { TERMINAL_TASK_STATES, type TaskState } from '../core/states.js';
import type { Broker, QueueDepth } from '../engine/broker/broker.js';
import { getDag } from '../engine/store/dags.js';
import { taskOf, VersionCache } from '../engine/dag/versions.js';
import { parseItemId } from '../engine/dag/mapped.js';
import { decide, type TaskStateBrief } from '../engine/scheduler/decide.js';
import type { Queryable } from '../engine/store/db.js';
import { poolSizes } from '../engine/store/pools.js';
import { getRun } from '../engine/store/runs.js';
import { listTaskInstances, type TaskInstanceRow } from '../engine/store/task-instances.js';
import * as waits from '../engine/store/waits.js';
import type { ConnectionOptions } from './config.js';
import { connectBroker, withEngine } from './engine.js';
import { reasonText, type TaskWait, type WaitReason, type WhyResult } from './why-reasons.js';

export type { TaskWait, WaitReason, WhyResult } from './why-reasons.js';
export { reasonText } from './why-reasons.js';

/** A worker silent this long is named as possibly lost (the scheduler's default threshold is 30 s). */
const LIVE_WITHIN_MS = 30_000;
const SILENT_AFTER_MS = 10_000;

/** Why the tasks of a run wait (the named one, or every unfinished one). */
export async function explainWait(
  o: ConnectionOptions & { runId: string; taskId?: string },
): Promise<WhyResult> {
  return withEngine(o, async (e) => {
    // The broker is asked about consumers and depths; one that cannot be reached is itself a reason.
    let broker: Broker | null = null;
    let brokerError: string | null = null;
    try {
      broker = await connectBroker(e.db, e.conn);
    } catch (err) {
      brokerError = (err as Error).message;
    }
    try {
      return await explainWaitIn({ db: e.db, broker, brokerError }, o);
    } finally {
      await broker?.close().catch(() => undefined);
    }
  });
}

/** The same, on an open store and broker (the dashboard's). */
export async function explainWaitIn(
  e: { db: Queryable; broker: Broker | null; brokerError?: string | null },
  o: { runId: string; taskId?: string },
): Promise<WhyResult> {
  const { db } = e;
  const run = await getRun(db, o.runId);
  if (!run) throw new NotFoundError('run', o.runId, `unknown run "${o.runId}"`);
  const dag = await new VersionCache(db).get(run.dag_hash);
  const rows = run.state === 'queued' ? [] : await listTaskInstances(db, o.runId);
  const byId = new Map(rows.map((r) => [r.task_id, r]));
  // The DAG's order, then what is not in it (run callbacks, @onRun...).
  let ids = [
    ...dag.tasks.map((t) => t.taskId),
    ...rows.map((r) => r.task_id).filter((id) => !taskOf(dag, id)),
  ];
  if (o.taskId !== undefined) {
    if (!ids.includes(o.taskId))
      throw new NotFoundError('task', o.taskId, `run "${o.runId}" has no task "${o.taskId}"`);
    ids = [o.taskId];
  }
  const out: TaskWait[] = [];
  const push = (taskId: string, state: TaskState, reason: WaitReason) =>
    out.push({ taskId, state, reason, text: reasonText(reason) });

  if (run.state === 'queued') {
    const reason = await queuedRunReason(db, run.dag_id, run.run_id);
    for (const id of ids) push(id, 'none', reason);
    return { runId: run.run_id, dagId: run.dag_id, runState: run.state, tasks: out };
  }
  const ctx = new Facts(db, e.broker, e.brokerError ?? null, dag, run.dag_id, run.run_id, rows);
  for (const id of ids) {
    const row = byId.get(id);
    const state: TaskState = row?.state ?? 'none';
    if (TERMINAL_TASK_STATES.includes(state)) {
      if (o.taskId !== undefined) push(id, state, { kind: 'finished', state });
      continue;
    }
    if (run.state !== 'running') {
      push(id, state, { kind: 'run_ended', runState: run.state });
      continue;
    }
    push(id, state, await ctx.reasonFor(id, state, row));
  }
  return { runId: run.run_id, dagId: run.dag_id, runState: run.state, tasks: out };
}

async function queuedRunReason(db: Queryable, dagId: string, runId: string): Promise<WaitReason> {
  const d = await getDag(db, dagId);
  if (d?.is_paused) return { kind: 'dag_paused', dagId };
  if (d?.max_active_runs !== null && d?.max_active_runs !== undefined) {
    const running = await waits.runningRunsOfDag(db, dagId);
    if (running.length >= d.max_active_runs)
      return { kind: 'max_active_runs', dagId, limit: d.max_active_runs, runningRuns: running };
  }
  return { kind: 'run_queued', queuedBefore: await waits.queuedRunsBefore(db, dagId, runId) };
}

/** What the reasons of one run's tasks are read from; each read at most once, when a task needs it. */
class Facts {
  /** What the scheduler's decide() would do now: settle these tasks, queue those. */
  private readonly settles: Map<string, 'skipped' | 'upstream_failed'>;
  private readonly toQueue: Set<string>;
  private readonly states: Map<string, TaskState>;
  private memo = new Map<string, Promise<unknown>>();

  constructor(
    private readonly db: Queryable,
    private readonly broker: Broker | null,
    private readonly brokerError: string | null,
    private readonly dag: SerializedDag,
    private readonly dagId: string,
    private readonly runId: string,
    rows: TaskInstanceRow[],
  ) {
    const briefs = new Map<string, TaskStateBrief>(
      rows.map((r) => [r.task_id, { state: r.state, nextRetryAt: r.next_retry_at, output: r.output }]),
    );
    this.states = new Map(rows.map((r) => [r.task_id, r.state]));
    const d = decide(dag, briefs, new Date());
    // By task id: a run may have 10,000 tasks, each looked up here.
    this.settles = new Map(d.settle.map((x) => [x.taskId, x.state]));
    this.toQueue = new Set(d.queue.map((x) => x.taskId));
  }

  private once<T>(key: string, f: () => Promise<T>): Promise<T> {
    let p = this.memo.get(key) as Promise<T> | undefined;
    if (!p) this.memo.set(key, (p = f()));
    return p;
  }

  async reasonFor(taskId: string, state: TaskState, row: TaskInstanceRow | undefined): Promise<WaitReason> {
    const task = taskOf(this.dag, taskId);
    if (state === 'running') return this.running(row!);
    if (state === 'queued') return this.queued(row!);
    if (!task) return { kind: 'ready' };
    const settle = this.settles.get(taskId);
    if (settle) return { kind: 'trigger_rule', triggerRule: task.triggerRule, verdict: settle };
    if (!this.toQueue.has(taskId)) {
      if (state === 'up_for_retry') {
        const until = row!.next_retry_at!;
        const now = await this.once('now', () => waits.dbNow(this.db));
        return {
          kind: 'retry_wait',
          nextTry: row!.try_number + 1,
          until: until.toISOString(),
          inMs: until.getTime() - now.getTime(),
        };
      }
      const notDone = task.upstream
        .map((u) => ({ taskId: u, state: this.states.get(u) ?? ('none' as TaskState) }))
        .filter((u) => !TERMINAL_TASK_STATES.includes(u.state));
      return { kind: 'upstream', triggerRule: task.triggerRule, notDone };
    }
    return (await this.admission(task)) ?? { kind: 'ready' };
  }

  /** What admission would refuse it for, in its order: the DAG's task slots, then the pool. */
  private async admission(task: SerializedTask): Promise<WaitReason | null> {
    const d = await this.once('dag', () => getDag(this.db, this.dagId));
    const limit = d?.max_active_tasks;
    if (limit !== null && limit !== undefined) {
      const used = await this.once('dagUsed', () => waits.dagTaskSlotsUsed(this.db, this.dagId));
      if (used >= limit) {
        const holders = await this.once('dagHolders', () => waits.dagTaskSlotHolders(this.db, this.dagId));
        return {
          kind: 'max_active_tasks',
          dagId: this.dagId,
          limit,
          used,
          holders: holders.map((h) => ({
            runId: h.run_id,
            taskId: h.task_id,
            tryNumber: h.try_number,
            state: h.state,
          })),
        };
      }
    }
    if (!task.pool) return null;
    const pool = task.pool;
    const needs = task.poolSlots ?? 1;
    const size = (await this.once(`pool:${pool}`, () => poolSizes(this.db, [pool]))).get(pool);
    if (size === undefined) return { kind: 'pool_missing', pool };
    if (needs > size) return { kind: 'pool_too_small', pool, slots: size, needs };
    const holders = await this.once(`poolHolders:${pool}`, () => waits.poolSlotHolders(this.db, [pool]));
    const free = size - holders.reduce((n, h) => n + h.pool_slots, 0);
    if (needs <= free) return null;
    return {
      kind: 'pool_full',
      pool,
      slots: size,
      free: Math.max(0, free),
      needs,
      holders: holders.map((h) => ({
        runId: h.run_id,
        taskId: h.task_id,
        tryNumber: h.try_number,
        state: h.state,
        slots: h.pool_slots,
      })),
    };
  }

  private async queued(row: TaskInstanceRow): Promise<WaitReason> {
    const queue = row.queue;
    const outbox = await this.once('outbox', () => waits.tasksInOutbox(this.db, this.runId));
    const inOutbox = outbox.get(row.task_id);
    if (inOutbox) return { kind: 'outbox', queue, since: inOutbox.toISOString() };
    let depth: QueueDepth | null = null;
    if (this.brokerError) return { kind: 'broker_unreachable', queue, error: this.brokerError };
    if (this.broker) {
      const broker = this.broker;
      try {
        depth = (await this.once(`depth:${queue}`, () => broker.depths([queue])))[0] ?? null;
      } catch (err) {
        return { kind: 'broker_unreachable', queue, error: (err as Error).message };
      }
    }
    const workers = (await this.once('workers', () => waits.liveWorkers(this.db, LIVE_WITHIN_MS))).filter(
      (w) => w.queues.includes(queue) || w.queues.includes('*'),
    );
    if (workers.length === 0 && !(depth?.consumers && depth.consumers > 0))
      return { kind: 'no_worker', queue };
    if (workers.length > 0 && workers.every((w) => w.running >= w.concurrency))
      return {
        kind: 'workers_busy',
        queue,
        workers: workers.map((w) => ({ workerId: w.worker_id, busy: w.running, slots: w.concurrency })),
      };
    return {
      kind: 'in_broker',
      queue,
      since: row.enqueued_at?.toISOString() ?? row.queued_at?.toISOString() ?? null,
      ready: depth?.ready ?? null,
      unacked: depth?.unacked ?? null,
      consumers: depth?.consumers ?? null,
      workers: workers.length,
    };
  }

  private async running(row: TaskInstanceRow): Promise<WaitReason> {
    const w = row.worker_id ? await waits.workerById(this.db, row.worker_id) : undefined;
    const gpus = w?.gpus;
    const mine = (g: { runId: string; taskId: string }) => g.runId === row.run_id && g.taskId === row.task_id;
    const waiting = gpus?.waiting.find(mine);
    if (w && gpus && waiting)
      return {
        kind: 'gpus_held',
        workerId: w.worker_id,
        request: waiting.request,
        devices: gpus.devices,
        holders: gpus.held.map((h) => ({
          runId: h.runId,
          taskId: h.taskId,
          tryNumber: h.tryNumber,
          ids: h.ids,
        })),
      };
    return {
      kind: 'running',
      workerId: row.worker_id,
      hostname: w?.hostname ?? null,
      since: row.started_at?.toISOString() ?? null,
      workerSilentMs: w && (w.stopped_at || w.silent_ms > SILENT_AFTER_MS) ? Math.round(w.silent_ms) : null,
      gpus: gpus?.held.find(mine)?.ids ?? [],
    };
  }
}

/** A line of `why`: one task, or the items of a mapped task that wait alike (same state and reason). */
export interface WaitLine {
  taskId: string;
  state: TaskWait['state'];
  text: string;
  /** For items told together: how many (taskId is then `task[first..last]`). */
  items?: number;
}

/** The lines of `why`: a 10,000-item map waiting for one thing is one line, not 10,000. */
export function waitLines(tasks: TaskWait[]): WaitLine[] {
  const out: WaitLine[] = [];
  const groups = new Map<string, { line: WaitLine; base: string; first: number; last: number }>();
  for (const t of tasks) {
    const item = parseItemId(t.taskId);
    if (!item) {
      out.push({ taskId: t.taskId, state: t.state, text: t.text });
      continue;
    }
    const key = `${item.taskId}\0${t.state}\0${t.reason.kind}`;
    const g = groups.get(key);
    if (!g) {
      const line: WaitLine = { taskId: t.taskId, state: t.state, text: t.text, items: 1 };
      groups.set(key, { line, base: item.taskId, first: item.index, last: item.index });
      out.push(line);
      continue;
    }
    g.first = Math.min(g.first, item.index);
    g.last = Math.max(g.last, item.index);
    g.line.items! += 1;
    g.line.taskId = `${g.base}[${g.first}..${g.last}]`;
  }
  return out;
}
