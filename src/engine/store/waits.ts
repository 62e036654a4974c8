/**
 * What `airtasks why` reads to say what holds a task: the tasks holding a DAG's task slots or a pool's
 * slots, the runs holding a DAG's run slots, messages still in the outbox, live workers with their busy
 * slots and GPUs. Read-only; set-based, so a run of 10,000 tasks costs a handful of statements.
 */
import type { TaskState } from '../../core/states.js';
import type { Queryable } from './db.js';

/** A task instance that holds a slot (queued or running). */
export interface SlotHolder {
  run_id: string;
  task_id: string;
  try_number: number;
  state: TaskState;
  pool: string | null;
  pool_slots: number;
}

/** Task instances of a DAG (across its runs) that take its max_active_tasks slots: queued or running. */
export async function dagTaskSlotHolders(q: Queryable, dagId: string, limit = 50): Promise<SlotHolder[]> {
  return (
    await q.query<SlotHolder>(
      `SELECT t.run_id, t.task_id, t.try_number, t.state, t.pool, t.pool_slots
       FROM task_instances t JOIN dag_runs r ON r.run_id = t.run_id
       WHERE r.dag_id = $1 AND t.state IN ('queued', 'running')
       ORDER BY t.queued_at NULLS LAST, t.run_id, t.task_id LIMIT $2`,
      [dagId, limit],
    )
  ).rows;
}

/** How many task instances of the DAG hold its task slots (the count admission compares with the limit). */
export async function dagTaskSlotsUsed(q: Queryable, dagId: string): Promise<number> {
  return (
    await q.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM task_instances t JOIN dag_runs r ON r.run_id = t.run_id
       WHERE r.dag_id = $1 AND t.state IN ('queued', 'running')`,
      [dagId],
    )
  ).rows[0]!.n;
}

/** Task instances holding slots of the pools (queued or running), heaviest holders first. */
export async function poolSlotHolders(q: Queryable, pools: string[]): Promise<SlotHolder[]> {
  if (pools.length === 0) return [];
  return (
    await q.query<SlotHolder>(
      `SELECT run_id, task_id, try_number, state, pool, pool_slots FROM task_instances
       WHERE pool = ANY($1) AND state IN ('queued', 'running')
       ORDER BY pool, pool_slots DESC, queued_at NULLS LAST`,
      [pools],
    )
  ).rows;
}

/** Running runs of a DAG (what its max_active_runs counts), oldest first. */
export async function runningRunsOfDag(q: Queryable, dagId: string): Promise<string[]> {
  return (
    await q.query<{ run_id: string }>(
      `SELECT run_id FROM dag_runs WHERE dag_id = $1 AND state = 'running' ORDER BY created_at`,
      [dagId],
    )
  ).rows.map((r) => r.run_id);
}

/** Queued runs of a DAG created before the given run (they start first: runs start in creation order). */
export async function queuedRunsBefore(q: Queryable, dagId: string, runId: string): Promise<number> {
  return (
    await q.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM dag_runs x
       WHERE x.dag_id = $1 AND x.state = 'queued'
         AND x.created_at < (SELECT created_at FROM dag_runs WHERE run_id = $2)`,
      [dagId, runId],
    )
  ).rows[0]!.n;
}

/** Tasks of the run whose current try's message is still in the outbox (written, not yet published). */
export async function tasksInOutbox(q: Queryable, runId: string): Promise<Map<string, Date>> {
  const r = await q.query<{ task_id: string; created_at: Date }>(
    `SELECT payload->>'taskId' AS task_id, min(created_at) AS created_at FROM outbox
     WHERE payload->>'runId' = $1 GROUP BY 1`,
    [runId],
  );
  return new Map(r.rows.map((x) => [x.task_id, x.created_at]));
}

/** What a live worker is, does and holds: the row plus its busy slots. */
export interface LiveWorker {
  worker_id: string;
  hostname: string;
  queues: string[];
  concurrency: number;
  heartbeat_at: Date;
  /** Task instances it runs now. */
  running: number;
  /** The GPU state it last wrote (see migration 0012); null when it manages no GPUs. */
  gpus: WorkerGpus | null;
}

export interface GpuHolder {
  runId: string;
  taskId: string;
  tryNumber: number;
}

export interface WorkerGpus {
  devices: string[];
  held: Array<GpuHolder & { ids: string[] }>;
  waiting: Array<GpuHolder & { request: string }>;
}

/** Workers that heartbeated within the window and have not stopped, with how many tasks each runs. */
export async function liveWorkers(q: Queryable, aliveWithinMs: number): Promise<LiveWorker[]> {
  return (
    await q.query<LiveWorker>(
      `SELECT w.worker_id, w.hostname, w.queues, w.concurrency, w.heartbeat_at, w.gpus,
         (SELECT count(*)::int FROM task_instances t WHERE t.worker_id = w.worker_id AND t.state = 'running')
           AS running
       FROM workers w
       WHERE w.stopped_at IS NULL AND w.heartbeat_at > now() - make_interval(secs => $1)
       ORDER BY w.started_at`,
      [aliveWithinMs / 1000],
    )
  ).rows;
}

/** A worker's row however long ago it heartbeated (the worker of a running task), with its age in ms. */
export async function workerById(
  q: Queryable,
  workerId: string,
): Promise<(LiveWorker & { stopped_at: Date | null; silent_ms: number }) | undefined> {
  return (
    await q.query<LiveWorker & { stopped_at: Date | null; silent_ms: number }>(
      `SELECT w.worker_id, w.hostname, w.queues, w.concurrency, w.heartbeat_at, w.gpus, w.stopped_at,
         (extract(epoch FROM now() - w.heartbeat_at) * 1000)::float8 AS silent_ms,
         (SELECT count(*)::int FROM task_instances t WHERE t.worker_id = w.worker_id AND t.state = 'running')
           AS running
       FROM workers w WHERE w.worker_id = $1`,
      [workerId],
    )
  ).rows[0];
}

/** The database's clock: waits are measured against it, as the scheduler does. */
export async function dbNow(q: Queryable): Promise<Date> {
  return (await q.query<{ now: Date }>(`SELECT now() AS now`)).rows[0]!.now;
}

/** Records a worker's GPU state (see migration 0012); null when it manages no GPUs. */
export async function recordWorkerGpus(q: Queryable, workerId: string, gpus: WorkerGpus | null) {
  await q.query(`UPDATE workers SET gpus = $2 WHERE worker_id = $1`, [
    workerId,
    gpus === null ? null : JSON.stringify(gpus),
  ]);
}
