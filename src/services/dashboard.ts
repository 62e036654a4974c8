/**
 * What the dashboard's pages show beyond what the CLI's commands already return: DAGs with their recent
 * runs, a window of the runs × tasks grid, versions, workers with the tasks they run, queues with their
 * broker depths, log pages with an offset, and "mark for retry". Everything is masked as the CLI masks it.
 */
import { NotFoundError } from '../core/errors.js';
import type { GpuInfo } from '../core/gpus.js';
import type { RunState } from '../core/states.js';
import * as board from '../engine/store/dashboard.js';
import * as dags from '../engine/store/dags.js';
import { readLogs } from '../engine/store/logs.js';
import { queuedByQueue, runningByQueue } from '../engine/store/queue-load.js';
import * as tis from '../engine/store/task-instances.js';
import type { GpuHolder, WorkerGpus } from '../engine/store/waits.js';
import { listWorkers } from '../engine/store/workers.js';
import { secretVariablesMasker } from '../engine/variables.js';
import type { ConnectionOptions } from './config.js';
import { listDags, type DagListing } from './dags.js';
import { cachedVersion } from './dag-versions.js';
import { withEngine } from './engine.js';
import type { Queryable } from '../engine/store/db.js';
import { clearTask, downstreamOf, type ClearResult } from './run-control.js';
import { showRun } from './runs.js';

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export type DagOverview = Omit<DagListing, 'importErrors'> & {
  dags: Array<DagListing['dags'][number] & { recentRuns: Array<{ runId: string; state: RunState }> }>;
  importErrors: Array<{ fileloc: string; message: string; occurredAt: string }>;
};

/** `dags list` plus each DAG's last runs and when each import error happened. */
export async function dagsOverview(o: ConnectionOptions, recent = 10): Promise<DagOverview> {
  return withEngine(o, async (e) => {
    const listing = await listDags({ ...o, engine: e });
    const states = await board.recentRunStates(e.db, recent);
    const errors = await dags.listImportErrors(e.db);
    return {
      dags: listing.dags.map((d) => ({
        ...d,
        recentRuns: states
          .filter((s) => s.dag_id === d.dagId)
          .map((s) => ({ runId: s.run_id, state: s.state as RunState })),
      })),
      importErrors: errors.map((x) => ({
        fileloc: x.fileloc,
        message: x.message,
        occurredAt: x.occurred_at.toISOString(),
      })),
    };
  });
}

export { versionByHash as dagVersion } from './dag-versions.js';

export async function dagVersions(o: ConnectionOptions & { dagId: string }) {
  return withEngine(o, async (e) =>
    (await board.dagVersions(e.db, o.dagId)).map((v) => ({
      hash: v.hash,
      createdAt: v.created_at.toISOString(),
      tasks: v.tasks,
      runs: v.runs,
    })),
  );
}

export interface GridWindow {
  dagId: string;
  totalRuns: number;
  totalTasks: number;
  taskOffset: number;
  /** Newest first; pass the last one's createdAt as `before` for the page after. */
  runs: Array<{ runId: string; state: RunState; createdAt: string; logicalDate: string }>;
  /** The window of task ids, in the DAG's order (upstream first). */
  tasks: string[];
  /** cells[i][j]: the state of tasks[j] in runs[i] ('' where the run has no such task). */
  cells: string[][];
}

/** One window of the grid of runs × tasks: `limit` runs before `before`, `taskLimit` tasks from `taskOffset`. */
export async function dagGrid(
  o: ConnectionOptions & {
    dagId: string;
    limit?: number;
    before?: string;
    taskOffset?: number;
    taskLimit?: number;
  },
): Promise<GridWindow> {
  return withEngine(o, async (e) => {
    const row = await dags.getDag(e.db, o.dagId);
    if (!row) throw new NotFoundError('dag', o.dagId, `unknown DAG "${o.dagId}"`);
    const order = await taskOrder(e.db, row.hash);
    const offset = Math.max(0, o.taskOffset ?? 0);
    const tasks = order.slice(offset, offset + Math.min(500, o.taskLimit ?? 100));
    const w = await board.runsWindow(e.db, o.dagId, {
      limit: Math.min(200, o.limit ?? 25),
      before: o.before ? new Date(o.before) : null,
    });
    const cells = await board.gridCells(
      e.db,
      w.runs.map((r) => r.run_id),
      tasks,
    );
    const at = new Map(cells.map((c) => [`${c.run_id}\u0000${c.task_id}`, c.state]));
    return {
      dagId: o.dagId,
      totalRuns: w.total,
      totalTasks: order.length,
      taskOffset: offset,
      runs: w.runs.map((r) => ({
        runId: r.run_id,
        state: r.state,
        createdAt: r.created_at.toISOString(),
        logicalDate: r.logical_date.toISOString(),
      })),
      tasks,
      cells: w.runs.map((r) => tasks.map((t) => at.get(`${r.run_id}\u0000${t}`) ?? '')),
    };
  });
}

const orders = new Map<string, string[]>();

/** A version's task ids upstream first, kept per version (a version never changes). */
async function taskOrder(db: Queryable, hash: string): Promise<string[]> {
  const known = orders.get(hash);
  if (known) return known;
  const order = topoOrder((await cachedVersion(db, hash))?.tasks ?? []);
  orders.set(hash, order);
  if (orders.size > 16) orders.delete(orders.keys().next().value!);
  return order;
}

/** Task ids upstream first (Kahn's order, ties in declaration order). */
export function topoOrder(tasks: ReadonlyArray<{ taskId: string; upstream: string[] }>): string[] {
  const indegree = new Map(tasks.map((t) => [t.taskId, t.upstream.length]));
  const down = new Map<string, string[]>(tasks.map((t) => [t.taskId, []]));
  for (const t of tasks) for (const u of t.upstream) down.get(u)?.push(t.taskId);
  const out: string[] = [];
  const ready = tasks.filter((t) => t.upstream.length === 0).map((t) => t.taskId);
  for (let i = 0; i < ready.length; i++) {
    const id = ready[i]!;
    out.push(id);
    for (const d of down.get(id) ?? []) {
      const n = (indegree.get(d) ?? 1) - 1;
      indegree.set(d, n);
      if (n === 0) ready.push(d);
    }
  }
  return out;
}

export interface WorkerView {
  workerId: string;
  hostname: string;
  pid: number;
  queues: string[];
  concurrency: number;
  busy: number;
  free: number;
  startedAt: string;
  heartbeatAt: string;
  tasks: Array<{ runId: string; taskId: string; tryNumber: number; startedAt: string | null }>;
  /** Its GPUs as `status --json` lists them, each with the try holding it now (null: free); [] for none. */
  gpus: Array<GpuInfo & { heldBy: GpuHolder | null }>;
}

/** The GPUs a worker reported, or only their ids where it reported none, with who holds each. */
export function workerGpus(info: GpuInfo[] | null, state: WorkerGpus | null): WorkerView['gpus'] {
  const devices = info ?? state?.devices.map((id) => ({ id, model: null, memoryMiB: null })) ?? [];
  return devices.map((g) => {
    const h = state?.held.find((x) => x.ids.includes(g.id));
    return {
      id: g.id,
      model: g.model,
      memoryMiB: g.memoryMiB,
      heldBy: h ? { runId: h.runId, taskId: h.taskId, tryNumber: h.tryNumber } : null,
    };
  });
}

/** Live workers (heartbeat within a minute) and the tasks each runs now. */
export async function workersOverview(o: ConnectionOptions): Promise<WorkerView[]> {
  return withEngine(o, async (e) => {
    const running = await board.runningByWorker(e.db);
    return (await listWorkers(e.db, 60_000)).map((w) => {
      const tasks = running
        .filter((r) => r.worker_id === w.worker_id)
        .map((r) => ({
          runId: r.run_id,
          taskId: r.task_id,
          tryNumber: r.try_number,
          startedAt: iso(r.started_at),
        }));
      return {
        workerId: w.worker_id,
        hostname: w.hostname,
        pid: w.pid,
        queues: w.queues,
        concurrency: w.concurrency,
        busy: tasks.length,
        free: Math.max(0, w.concurrency - tasks.length),
        startedAt: w.started_at.toISOString(),
        heartbeatAt: w.heartbeat_at.toISOString(),
        tasks,
        gpus: workerGpus(w.gpu_info, w.gpus),
      };
    });
  });
}

export interface QueueView {
  queue: string;
  /** From the broker; null when it could not be read. */
  ready: number | null;
  unacked: number | null;
  consumers: number | null;
  queuedTasks: number;
  runningTasks: number;
  workers: string[];
  warning: string | null;
}

/** Every queue in use: broker depths, waiting and running task instances, who consumes it. */
export async function queuesOverview(
  o: ConnectionOptions,
): Promise<{ queues: QueueView[]; brokerError: string | null }> {
  return withEngine(
    o,
    async (e) => {
      const queued = await queuedByQueue(e.db);
      const running = await runningByQueue(e.db);
      const workers = await listWorkers(e.db, 60_000);
      const names = [
        ...new Set([
          ...queued.keys(),
          ...running.keys(),
          ...workers.flatMap((w) => w.queues).filter((q) => q !== '*'),
        ]),
      ].sort();
      let brokerError: string | null = null;
      const depths = e.broker
        ? await e.broker.depths(names).catch((err: Error) => {
            brokerError = err.message;
            return [];
          })
        : [];
      if (!e.broker) brokerError = 'no broker connection';
      const queues = names.map((q): QueueView => {
        const d = depths.find((x) => x.queue === q);
        const consumers = workers.filter((w) => w.queues.includes(q) || w.queues.includes('*'));
        const waiting = (queued.get(q) ?? 0) + (d?.ready ?? 0);
        return {
          queue: q,
          ready: d?.ready ?? null,
          unacked: d?.unacked ?? null,
          consumers: d?.consumers ?? null,
          queuedTasks: queued.get(q) ?? 0,
          runningTasks: running.get(q) ?? 0,
          workers: consumers.map((w) => w.worker_id),
          warning:
            consumers.length === 0 && (d?.consumers ?? 0) === 0
              ? `no worker consumes "${q}"${waiting ? ` and ${waiting} task(s) wait in it` : ''}: start one (airtasks worker -q ${q})`
              : null,
        };
      });
      return { queues, brokerError };
    },
    { broker: true },
  );
}

export interface LogPage {
  runId: string;
  taskId: string;
  lines: Array<{ id: number; tryNumber: number; stream: string; ts: string; line: string }>;
  /** Pass as `after` to get the lines written since. */
  nextOffset: number;
}

/** Log lines of a task after `after` (a line id), masked: what a following page polls. */
export async function taskLogPage(
  o: ConnectionOptions & {
    runId: string;
    taskId: string;
    tryNumber?: number;
    after?: number;
    limit?: number;
  },
): Promise<LogPage> {
  return withEngine(o, async (e) => {
    const ti = await tis.getTaskInstance(e.db, o.runId, o.taskId);
    if (!ti) throw new NotFoundError('task', o.taskId, `run "${o.runId}" has no task "${o.taskId}"`);
    const rows = await readLogs(e.db, o.runId, o.taskId, {
      tryNumber: o.tryNumber,
      afterId: o.after ?? 0,
      limit: Math.min(o.limit ?? 5000, 20_000),
    });
    const m = await secretVariablesMasker(e.db);
    return {
      runId: o.runId,
      taskId: o.taskId,
      lines: rows.map((l) => ({
        id: Number(l.id),
        tryNumber: l.try_number,
        stream: l.stream,
        ts: l.ts.toISOString(),
        line: m.mask(l.line),
      })),
      nextOffset: rows.length ? Math.max(...rows.map((l) => Number(l.id))) : (o.after ?? 0),
    };
  });
}

/**
 * Runs a failed task again, with the tasks after it that failed because of it (upstream_failed); the
 * tasks after it that succeeded or were skipped by a branch are kept (`clear --downstream` reruns them).
 */
export async function markForRetry(
  o: ConnectionOptions & { runId: string; taskId: string },
): Promise<ClearResult> {
  return withEngine(o, async (e) => {
    const run = await showRun({ ...o, engine: e });
    const t = run.tasks.find((x) => x.taskId === o.taskId);
    if (!t) throw new NotFoundError('task', o.taskId, `run "${o.runId}" has no task "${o.taskId}"`);
    const v = await dags.getVersion(e.db, run.dagHash);
    const after = new Set(downstreamOf(v?.tasks ?? [], o.taskId));
    const blocked = run.tasks.filter((x) => after.has(x.taskId) && x.state === 'upstream_failed');
    return clearTask({ ...o, engine: e, alsoTaskIds: blocked.map((x) => x.taskId) });
  });
}

/** Stamps for the live-update poller: they change when what a page shows changes. */
export async function changeStamp(o: ConnectionOptions & { runId?: string }): Promise<string> {
  return withEngine(o, async (e) => (o.runId ? board.runStamp(e.db, o.runId) : board.globalStamp(e.db)));
}
