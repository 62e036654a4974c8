/** The workers table: who is alive, and which claims they still hold. */
import type { GpuInfo } from '../../core/gpus.js';
import type { Queryable } from './db.js';
import type { WorkerGpus } from './waits.js';

export interface WorkerInfo {
  workerId: string;
  hostname: string;
  pid: number;
  queues: string[];
  concurrency: number;
  /** Its GPUs (migration 0010); none or absent for a worker that manages none. */
  gpus?: readonly GpuInfo[];
}

export interface WorkerRow {
  worker_id: string;
  hostname: string;
  pid: number;
  queues: string[];
  concurrency: number;
  started_at: Date;
  heartbeat_at: Date;
  stopped_at: Date | null;
  gpu_info: GpuInfo[] | null;
  /** Who holds which of its GPUs now, as it last wrote it (migration 0012); null when it manages none. */
  gpus: WorkerGpus | null;
}

export async function registerWorker(q: Queryable, w: WorkerInfo) {
  await q.query(
    `INSERT INTO workers (worker_id, hostname, pid, queues, concurrency, gpu_info)
     VALUES ($1, $2, $3, $4, $5, $6::jsonb)
     ON CONFLICT (worker_id) DO UPDATE SET heartbeat_at = now(), stopped_at = NULL, gpu_info = EXCLUDED.gpu_info`,
    [w.workerId, w.hostname, w.pid, w.queues, w.concurrency, w.gpus?.length ? JSON.stringify(w.gpus) : null],
  );
}

/**
 * Heartbeats, and returns which of the given claim tokens are no longer held
 * (the scheduler declared this worker lost and the task moved on): those tasks must stop.
 */
export async function heartbeat(q: Queryable, workerId: string, tokens: string[]): Promise<string[]> {
  const r = await q.query<{ lost: string[] | null }>(
    `WITH hb AS (UPDATE workers SET heartbeat_at = now() WHERE worker_id = $1 AND stopped_at IS NULL RETURNING 1)
     SELECT array(SELECT tok FROM unnest($2::uuid[]) AS tok
                  WHERE NOT EXISTS (SELECT 1 FROM task_instances t WHERE t.claim_token = tok AND t.state = 'running')
                 )::text[] AS lost
     FROM (SELECT count(*) FROM hb) AS _`,
    [workerId, tokens],
  );
  return r.rows[0]?.lost ?? [];
}

export async function stopWorker(q: Queryable, workerId: string) {
  await q.query(`UPDATE workers SET stopped_at = now() WHERE worker_id = $1`, [workerId]);
}

export async function listWorkers(q: Queryable, aliveWithinMs: number): Promise<WorkerRow[]> {
  return (
    await q.query<WorkerRow>(
      `SELECT * FROM workers WHERE stopped_at IS NULL AND heartbeat_at > now() - make_interval(secs => $1)
       ORDER BY started_at`,
      [aliveWithinMs / 1000],
    )
  ).rows;
}
